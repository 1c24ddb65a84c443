// The tuning guide's load profiles as one k6 script: it sends the benchmark event mix to the
// service's two gRPC methods at the rate of a profile in ../profiles.json, and writes what was
// answered to SUMMARY_PATH so a run can prove its events were stored (see "Proof of writes").
//
// Environment:
//   PROFILE       a profile name in ../profiles.json (smoke, baseline, scale, target, ...); required
//   BENCH_SCALE   multiplies every stage's duration, at least 1 s per stage (default 1)
//   TARGET        host:port of the gRPC server (default 127.0.0.1:6565)
//   RUN_ID        prefix of the event ids, unique per run (default k6-<epoch ms>)
//   SUMMARY_PATH  where handleSummary writes its JSON (none when unset)
//   MAX_VUS       the fixed number of VUs (default: enough for the profile's peak rate, see below)
//
// Run with scripts/install-k6.sh's k6:  k6 run --quiet bench/k6/events.js
//
// The mix (shared with the Swift load generator): namespace "bench", 10,000 users; 20% logins,
// 80% stat updates on stat-0..stat-4 with inc 1 and latest_value = how many stat events were sent
// so far for that (user, code). Per-user order holds because a user belongs to exactly one VU
// (user i to VU i % MAX_VUS + 1) and a VU has one call in flight at a time.
//
// Proof of writes: when every call was answered OK, after the service's flush,
//   sum(progress) over the login goals     = 10 x logins_ok
//   sum(progress) over the statistic goals = 10 x stat_value_sum_ok
// (each login and each stat event on stat-0..stat-4 moves one goal in each of the 10 challenges).
// k6 exits with 99 when a threshold was crossed; a stress run that its thresholds abort stops
// with calls in flight, which the service may have applied but the counters miss, so the proof
// is exact only for runs that reached their end.

import grpc from 'k6/net/grpc';
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter } from 'k6/metrics';

// ---- Configuration ---------------------------------------------------------------------------

const USERS = 10000;
const NAMESPACE = 'bench';
const STAT_CODES = ['stat-0', 'stat-1', 'stat-2', 'stat-3', 'stat-4'];
const LOGIN_SHARE = 0.2;
const LOGIN_METHOD = 'accelbyte.iam.account.v1.UserAuthenticationUserLoggedInService/OnMessage';
const STAT_METHOD = 'accelbyte.social.statistic.v1.StatisticStatItemUpdatedService/OnMessage';
// A call slower than this counts as failed (DEADLINE_EXCEEDED) rather than holding its VU for
// k6's default minute: a stress run near the breaking point must keep sending.
const CALL_TIMEOUT = '10s';
// Every gRPC status a failure can carry, by number, so each gets a submetric in the summary
// (below); "exception" is a call that got no status at all (no connection).
const GRPC_CODES = Array.from({ length: 17 }, (_, c) => String(c));
const STATUS_OK = String(Number(grpc.StatusOK));

const catalog = JSON.parse(open('../profiles.json'));
const breaks = catalog.break_thresholds;
const profileName = __ENV.PROFILE || '';
const profile = catalog.profiles[profileName];
if (!profile) {
  throw new Error(`PROFILE must be one of ${Object.keys(catalog.profiles).join(', ')} (got "${profileName}")`);
}
const scale = numberFromEnv('BENCH_SCALE', 1);
if (!(scale > 0)) throw new Error(`BENCH_SCALE must be positive (got ${__ENV.BENCH_SCALE})`);
const target = __ENV.TARGET || '127.0.0.1:6565';
const summaryPath = __ENV.SUMMARY_PATH || '';

// Stage durations in whole milliseconds, scaled, at least 1 s each.
const stages = profile.stages.map((s) => ({
  duration: `${Math.max(1000, Math.round(s.seconds * scale * 1000))}ms`,
  target: s.eps,
}));
const plannedSeconds = stages.reduce((sum, s) => sum + parseInt(s.duration, 10) / 1000, 0);
// Default VUs: the peak rate x the guide's p95 break threshold (100 ms), at least 10. A VU still
// busy when its next arrival is due makes k6 drop that iteration (dropped_iterations, the rate not
// achieved); with this many, that happens only once calls average over the break threshold, i.e.
// when the run is broken anyway. A VU costs k6 about 0.6 MB and the service one HTTP/2 connection.
const peakEps = Math.max(profile.start_eps, ...profile.stages.map((s) => s.eps));
const defaultVUs = Math.min(USERS, Math.max(10, Math.ceil((peakEps * breaks.p95_ms) / 1000)));
const maxVUs = Math.floor(numberFromEnv('MAX_VUS', defaultVUs));
if (!(maxVUs >= 1 && maxVUs <= USERS)) {
  throw new Error(`MAX_VUS must be 1...${USERS}, so every VU owns at least one user (got ${__ENV.MAX_VUS})`);
}

function numberFromEnv(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number (got "${raw}")`);
  return value;
}

// ---- Options ---------------------------------------------------------------------------------

// Thresholds are evaluated over the whole run so far, so in the first seconds of a ramp from
// 1 event/s a couple of slow calls (connection set-up, a cold service) would make the p95 alone.
// Wait 10% of the first stage (5 s to 60 s) before a break may abort: short next to any stage.
const ABORT_DELAY = `${Math.round(Math.min(60, Math.max(5, parseInt(stages[0].duration, 10) / 10000)))}s`;

function thresholds() {
  const t = {};
  if (profileName === 'stress') {
    // The guide's alerts: HighErrorRate (errors over 1%) and HighEventLatency (p95 over 100 ms).
    // k6 evaluates both over the whole run so far, so they trip a little after the instant the
    // service crossed them.
    t.checks = [{ threshold: `rate>=${1 - breaks.error_rate}`, abortOnFail: true, delayAbortEval: ABORT_DELAY }];
    t.grpc_req_duration = [{ threshold: `p(95)<${breaks.p95_ms}`, abortOnFail: true, delayAbortEval: ABORT_DELAY }];
  } else {
    t.checks = ['rate>0.99'];
  }
  // Always-true thresholds: they only make k6 keep one submetric per status code, which is how
  // handleSummary learns the failures by code (the summary data holds no other per-tag values).
  for (const code of GRPC_CODES.concat(['exception'])) {
    t[`events_failed{code:${code}}`] = ['count>=0'];
  }
  return t;
}

export const options = {
  scenarios: {
    events: {
      executor: 'ramping-arrival-rate',
      startRate: profile.start_eps,
      timeUnit: '1s',
      stages,
      // A fixed VU set: the user -> VU ownership that keeps per-user order needs every VU id
      // in 1...MAX_VUS to exist, and no VU created mid-run skews the rate.
      preAllocatedVUs: maxVUs,
      maxVUs,
      gracefulStop: '10s',
    },
  },
  thresholds: thresholds(),
  summaryTrendStats: ['min', 'avg', 'med', 'p(90)', 'p(95)', 'p(99)', 'p(99.9)', 'max'],
};

// ---- Metrics ---------------------------------------------------------------------------------

const eventsOK = new Counter('events_ok');
const eventsFailed = new Counter('events_failed');
const loginsOK = new Counter('logins_ok');
const statsOK = new Counter('stats_ok');
const statValueSumOK = new Counter('stat_value_sum_ok');

// ---- gRPC ------------------------------------------------------------------------------------

// Parsed once per VU in the init phase; k6 knows google/protobuf/{empty,struct}.proto itself.
const client = new grpc.Client();
client.load(['../../protos'], 'accelbyte/iam/account/v1/user_logged_in.proto', 'accelbyte/social/statistic/v1/stat_item_updated.proto');

// ---- The mix ---------------------------------------------------------------------------------

/** User i's id, as BenchCatalog.userID(i): `%08x-%04x-4%03x-8%03x-%012x`. */
function userID(i) {
  // i * 2654435761 stays below 2^53 for every i < USERS, so the double is exact.
  const tail = (i * 2654435761) % 281474976710656;
  return `${hex(i, 8)}-${hex(i % 65536, 4)}-4${hex(i % 4096, 3)}-8${hex((i * 7) % 4096, 3)}-${hex(tail, 12)}`;
}

function hex(value, width) {
  return value.toString(16).padStart(width, '0');
}

// Per-VU state, built on the VU's first iteration (its id is not known at init): the users it
// owns, each with its stat events sent and last answered OK per code, and its event sequence.
let vu = null;

function vuState() {
  if (vu !== null) return vu;
  const id = exec.vu.idInTest;
  if (id < 1 || id > maxVUs) throw new Error(`VU ${id} is outside 1...${maxVUs}: the VU set must be fixed`);
  const users = [];
  for (let i = id - 1; i < USERS; i += maxVUs) {
    users.push({ id: userID(i), sent: new Array(STAT_CODES.length).fill(0), ok: new Array(STAT_CODES.length).fill(0) });
  }
  vu = { id, users, sequence: 0, connected: false };
  return vu;
}

function loginEvent(eventID, user, timestamp) {
  return {
    id: eventID,
    name: 'userLoggedIn',
    namespace: NAMESPACE,
    user_id: user.id,
    timestamp,
    payload: { user_account: { user_id: user.id, namespace: NAMESPACE } },
  };
}

function statEvent(eventID, user, statCode, latestValue, timestamp) {
  return {
    id: eventID,
    name: 'statItemUpdated',
    namespace: NAMESPACE,
    user_id: user.id,
    timestamp,
    payload: { stat_code: statCode, user_id: user.id, namespace: NAMESPACE, latest_value: latestValue, inc: 1 },
  };
}

// ---- The test --------------------------------------------------------------------------------

export function setup() {
  return { run_id: __ENV.RUN_ID || `k6-${Date.now()}` };
}

export default function (data) {
  const state = vuState();
  if (!state.connected) {
    // One HTTP/2 connection per VU, opened on its first iteration (k6 allows no connect at
    // init). No connection (the service is not up): one failed event, tried again next time.
    try {
      client.connect(target, { plaintext: true, reflect: false, timeout: CALL_TIMEOUT });
      state.connected = true;
    } catch (error) {
      eventsFailed.add(1, { code: 'exception' });
      check(null, { 'answered OK': () => false });
      return;
    }
  }
  const user = state.users[Math.floor(Math.random() * state.users.length)];
  state.sequence += 1;
  const eventID = `${data.run_id}-${state.id}-${state.sequence}`;
  const timestamp = new Date().toISOString();
  const isLogin = Math.random() < LOGIN_SHARE;
  let stat = 0;
  let value = 0;
  let request;
  if (isLogin) {
    request = loginEvent(eventID, user, timestamp);
  } else {
    stat = Math.floor(Math.random() * STAT_CODES.length);
    user.sent[stat] += 1;
    value = user.sent[stat];
    request = statEvent(eventID, user, STAT_CODES[stat], value, timestamp);
  }

  // The status as its number: k6 hands it over as a Go object whose string form is its name
  // ("DeadlineExceeded") and which === does not compare by value.
  let status;
  try {
    const response = client.invoke(isLogin ? LOGIN_METHOD : STAT_METHOD, request, { timeout: CALL_TIMEOUT });
    status = response ? String(Number(response.status)) : 'exception';
  } catch (error) {
    status = 'exception';
  }
  const ok = status === STATUS_OK;
  check(status, { 'answered OK': () => ok });
  if (!ok) {
    eventsFailed.add(1, { code: status });
    return;
  }
  eventsOK.add(1);
  if (isLogin) {
    loginsOK.add(1);
  } else {
    statsOK.add(1);
    // Calls for one user never overlap, so an OK value is always above the last OK one.
    statValueSumOK.add(value - user.ok[stat]);
    user.ok[stat] = value;
  }
}

// ---- Summary ---------------------------------------------------------------------------------

function count(data, name) {
  const metric = data.metrics[name];
  return metric ? metric.values.count : 0;
}

function rounded(value) {
  return Math.round(value * 1000) / 1000;
}

export function handleSummary(data) {
  const failedByCode = {};
  for (const code of GRPC_CODES.concat(['exception'])) {
    const n = count(data, `events_failed{code:${code}}`);
    if (n > 0) failedByCode[code] = n;
  }
  const trend = data.metrics.grpc_req_duration ? data.metrics.grpc_req_duration.values : {};
  const latency = {};
  for (const [key, name] of [['min', 'min'], ['avg', 'avg'], ['med', 'med'], ['p(90)', 'p90'], ['p(95)', 'p95'], ['p(99)', 'p99'], ['p(99.9)', 'p99_9'], ['max', 'max']]) {
    latency[name] = trend[key] === undefined ? null : rounded(trend[key]);
  }
  const seconds = data.state.testRunDurationMs / 1000;
  const iterations = count(data, 'iterations');
  const dropped = count(data, 'dropped_iterations');
  const thresholdsFailed = Object.entries(data.metrics)
    .flatMap(([name, m]) => Object.entries(m.thresholds || {}).filter(([, t]) => !t.ok).map(([expr]) => `${name}: ${expr}`));
  const summary = {
    tool: 'k6',
    profile: profileName,
    scale,
    target,
    run_id: data.setup_data ? data.setup_data.run_id : null,
    max_vus: maxVUs,
    planned_duration_s: rounded(plannedSeconds),
    duration_s: rounded(seconds),
    iterations,
    dropped_iterations: dropped,
    // Share of the scheduled arrivals that were sent: the guide's third break threshold
    // (achieved_ratio in profiles.json) compares against it.
    achieved_ratio: iterations + dropped > 0 ? rounded(iterations / (iterations + dropped)) : null,
    events_per_s: seconds > 0 ? rounded(iterations / seconds) : 0,
    events_ok: count(data, 'events_ok'),
    events_failed: count(data, 'events_failed'),
    events_failed_by_code: failedByCode,
    logins_ok: count(data, 'logins_ok'),
    stats_ok: count(data, 'stats_ok'),
    stat_value_sum_ok: count(data, 'stat_value_sum_ok'),
    grpc_req_duration_ms: latency,
    thresholds_failed: thresholdsFailed,
  };
  const out = { stdout: textSummary(summary) };
  if (summaryPath) out[summaryPath] = JSON.stringify(summary, null, 2) + '\n';
  return out;
}

// k6 prints its own end-of-test summary only when handleSummary returns nothing, and its text
// renderer is not importable offline (it lives in a remote jslib): this is a short stand-in
// with the numbers that matter here.
function textSummary(s) {
  const l = s.grpc_req_duration_ms;
  const lines = [
    '',
    `  profile ${s.profile} x${s.scale} -> ${s.target}  run ${s.run_id}  (${s.max_vus} VUs)`,
    `  duration ${s.duration_s}s (planned ${s.planned_duration_s}s)  events ${s.iterations} (${s.events_per_s}/s)  dropped ${s.dropped_iterations} (achieved ${s.achieved_ratio})`,
    `  ok ${s.events_ok} (logins ${s.logins_ok}, stats ${s.stats_ok}, stat value sum ${s.stat_value_sum_ok})  failed ${s.events_failed} ${JSON.stringify(s.events_failed_by_code)}`,
    `  grpc_req_duration ms: min ${l.min} avg ${l.avg} med ${l.med} p90 ${l.p90} p95 ${l.p95} p99 ${l.p99} p99.9 ${l.p99_9} max ${l.max}`,
    s.thresholds_failed.length ? `  thresholds crossed: ${s.thresholds_failed.join('; ')}` : '  thresholds: all passed',
    '',
  ];
  return lines.join('\n');
}
