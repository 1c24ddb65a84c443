#!/usr/bin/env bash
# Holds the documentation to the code (part of `make test`), so each fact has one source of truth
# and every other place that states it is checked against that source:
#   - the variables the service reads are what the Swift sources read (`reader.string("NAME")`,
#     `reader.int/bool/duration/optionalDuration`, `environment["NAME"]`, `getenv("NAME")` under
#     Sources/EventHandler): each is in .env.example (a `NAME=` or `NAME=value` line) and has a row
#     in docs/configuration.md (first cell `NAME`), and neither file names a variable the service
#     does not read. A family read by prefix (`keys(withPrefix: "PREFIX_")`, any `PREFIX_<NAME>`)
#     has one row, `PREFIX_<NAME>`, whose default is `empty (...)`, and at least one commented
#     example `# PREFIX_SOMETHING=value` in .env.example (an uncommented `PREFIX_…=` line is fine);
#   - a default is what .env.example assigns: docs/configuration.md's default cell starts with it
#     as a code span (`5m`), with `empty (what that means)` where .env.example leaves it empty, and
#     `required` where the comment above it in .env.example says "Required";
#   - the metrics are deploy/prometheus/metrics.txt's (first word of each line): each appears in
#     docs/operations.md as `name` or `name{...}`;
#   - every relative link of README.md, PERFORMANCE.md and docs/*.md resolves (file and heading).
# Inputs can be pointed elsewhere (SOURCES, ENV_EXAMPLE, CONFIG_MD, OPERATIONS_MD, METRICS_TXT);
# `--self-test` uses that to show that the check fails on a copy with one fact removed or changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
SOURCES=${SOURCES:-$root/Sources/EventHandler}
ENV_EXAMPLE=${ENV_EXAMPLE:-$root/.env.example}
CONFIG_MD=${CONFIG_MD:-$root/docs/configuration.md}
OPERATIONS_MD=${OPERATIONS_MD:-$root/docs/operations.md}
METRICS_TXT=${METRICS_TXT:-$root/deploy/prometheus/metrics.txt}

check() {
  python3 - "$SOURCES" "$ENV_EXAMPLE" "$CONFIG_MD" "$OPERATIONS_MD" "$METRICS_TXT" <<'PY'
import glob, os, re, sys

sources, env_example, config_md, operations_md, metrics_txt = sys.argv[1:6]
def show(path):  # relative to the working directory when under it
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
for path in sys.argv[2:6]:
    if not os.path.isfile(path):
        sys.exit(f"check-docs: {show(path)} does not exist")

# Read from the process environment before any file is, so a line in .env cannot set them:
# documented in docs/configuration.md only, never in .env.example.
ENVIRONMENT_ONLY = {
    "ENV_FILE",  # names the settings file itself
}
# Read by docker-compose.yml from .env, not by the service: in both files, with the same default.
COMPOSE_ONLY = {
    "PUBLISH_HOST",  # the host address compose publishes the ports on
}

failures = []

# ---- What the service reads, and the defaults the code gives environment-only variables.
read, code_default = set(), {}
pattern = re.compile(
    r'reader\.(?:string|file|int|bool|duration|optionalDuration)\("([A-Z][A-Z0-9_]*)"'
    r'|environment\["([A-Z][A-Z0-9_]*)"\](?:\s*\?\?\s*"([^"]*)")?'
    r'|getenv\("([A-Z][A-Z0-9_]*)"\)'
    r'|keys\(withPrefix:\s*"([A-Z][A-Z0-9_]*_)"\)')
families = set()  # prefixes of the families read by prefix, e.g. KAFKA_PROPERTY_
for path in sorted(glob.glob(os.path.join(sources, "**", "*.swift"), recursive=True)):
    for m in pattern.finditer(open(path).read()):
        if m.group(5):
            families.add(m.group(5))
            read.add(m.group(5) + "<NAME>")
            continue
        name = m.group(1) or m.group(2) or m.group(4)
        read.add(name)
        if m.group(3) is not None:
            code_default[name] = m.group(3)
if len(read) < 20:
    failures.append(f"found only {len(read)} variables read under {show(sources)}: the pattern no longer matches the code")

# ---- .env.example: NAME=value lines, and whether the comment right above says "Required".
example, required, comment, family_examples = {}, set(), [], set()
for line in open(env_example):
    line = line.rstrip("\n")
    if line.startswith("#"):
        comment.append(line)
        m = re.match(r"#\s*([A-Z][A-Z0-9_]*)=", line)
        for prefix in families:
            if m and m.group(1).startswith(prefix) and len(m.group(1)) > len(prefix):
                family_examples.add(prefix + "<NAME>")
        continue
    m = re.match(r"([A-Z][A-Z0-9_]*)=(.*)$", line)
    if m:
        example[m.group(1)] = m.group(2).strip().strip("'\"")
        if re.search(r"\bRequired\b", " ".join(comment)):
            required.add(m.group(1))
    comment = []

# ---- docs/configuration.md: every table row whose first cell is a `VARIABLE`.
documented = {}
for number, line in enumerate(open(config_md), 1):
    if not line.startswith("|"):
        continue
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
    m = re.fullmatch(r"`([A-Z][A-Z0-9_]*(?:<NAME>)?)`", cells[0]) if cells else None
    if not m:
        continue
    name = m.group(1)
    if len(cells) != 4:
        failures.append(f"{show(config_md)}:{number}: the row of {name} has {len(cells)} cells, not 4 (variable, default, meaning, when to change it)")
    elif name in documented:
        failures.append(f"{show(config_md)}:{number}: {name} has a second row")
    else:
        documented[name] = cells[1]

family_names = {prefix + "<NAME>" for prefix in families}
for name in sorted(family_names):
    if name not in family_examples:
        failures.append(f"the service reads {name}, but {show(env_example)} has no commented example `# {name.replace('<NAME>', 'SOMETHING')}=value`")
    if name not in documented:
        failures.append(f"the service reads {name}, but {show(config_md)} has no row whose first cell is `{name}`")
    elif not re.match(r"empty \(.+\)", documented[name]):
        failures.append(f"{show(config_md)}: the default of {name} is \"{documented[name]}\": it should start with empty (what an unset family means)")
for name in sorted(read - ENVIRONMENT_ONLY - family_names):
    if name not in example:
        failures.append(f"the service reads {name}, but {show(env_example)} has no {name}= line")
    if name not in documented:
        failures.append(f"the service reads {name}, but {show(config_md)} has no row whose first cell is `{name}`")
for name in sorted(read & ENVIRONMENT_ONLY):
    if name in example:
        failures.append(f"{name} is read from the environment only (it cannot be set in .env): remove it from {show(env_example)}")
    if name not in documented:
        failures.append(f"the service reads {name} (environment only), but {show(config_md)} has no row whose first cell is `{name}`")
for name in sorted(ENVIRONMENT_ONLY - read):
    failures.append(f"check-docs.sh lists {name} as environment-only, but the service no longer reads it")
for name in sorted(COMPOSE_ONLY):
    if name not in example or name not in documented:
        failures.append(f"{name} (docker compose's) must be in both {show(env_example)} and {show(config_md)}")
    if name in read:
        failures.append(f"check-docs.sh lists {name} as compose-only, but the service reads it")
read_or_compose = read | COMPOSE_ONLY
for name in sorted(n for n in set(example) - read_or_compose if not any(n.startswith(p) for p in families)):
    failures.append(f"{show(env_example)} sets {name}, which the service does not read")
for name in sorted(set(documented) - read_or_compose):
    failures.append(f"{show(config_md)} documents {name}, which the service does not read")

# ---- Defaults: docs/configuration.md against .env.example (environment-only: against the code).
for name, cell in sorted(documented.items()):
    if name in family_names:
        continue  # checked above
    value = code_default.get(name) if name in ENVIRONMENT_ONLY else example.get(name)
    if value is None:
        continue  # reported above
    if name in ENVIRONMENT_ONLY:
        why = f"the code's default is {value}"
    elif name in required:
        why = f"the comment above {name}= in {show(env_example)} says Required"
    else:
        why = f"{show(env_example)} has {name}={value}"
    if name in required:
        want, pattern = "required", r"required"
    elif value == "":
        want, pattern = "empty (what an empty value means)", r"empty \(.+\)"
    else:
        want = f"`{value}`"
        pattern = re.escape(want)
    if not re.match(pattern, cell):
        failures.append(f"{show(config_md)}: the default of {name} is \"{cell}\", but {why}: it should start with {want}")

# ---- Metrics: every family in metrics.txt appears in docs/operations.md.
metrics = [line.split()[0] for line in open(metrics_txt) if line.strip() and not line.startswith("#")]
operations = open(operations_md).read()
for name in metrics:
    if not re.search(r"`" + re.escape(name) + r"(\{[^`]*\})?`", operations):
        failures.append(f"{show(operations_md)} does not mention the metric {name} (as `{name}` or `{name}{{...}}`)")

if failures:
    print("\n".join(f"check-docs: {f}" for f in failures), file=sys.stderr)
    sys.exit(1)
print(f"OK: {len(read)} variables the service reads, in .env.example ({len(read - ENVIRONMENT_ONLY)}; "
      f"environment-only: {', '.join(sorted(read & ENVIRONMENT_ONLY))}) and docs/configuration.md with the same "
      f"defaults; {len(metrics)} metrics of metrics.txt in docs/operations.md")
PY
}

# Copies the three documents, breaks one fact in each copy, and expects the check to fail naming it.
self_test() {
  local var metric out status=0
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # The mutations' targets: the last variable .env.example gives a value to, the first metric.
  var=$(grep -E '^[A-Z][A-Z0-9_]*=.' "$ENV_EXAMPLE" | tail -n 1 | cut -d= -f1)
  metric=$(grep -m 1 -E '^[a-z]' "$METRICS_TXT" | cut -d' ' -f1)
  fresh() { cp "$ENV_EXAMPLE" "$tmp/env.example"; cp "$CONFIG_MD" "$tmp/configuration.md"; cp "$OPERATIONS_MD" "$tmp/operations.md"; }
  run() { ENV_EXAMPLE=$tmp/env.example CONFIG_MD=$tmp/configuration.md OPERATIONS_MD=$tmp/operations.md check; }
  # expect_failure DESCRIPTION FILE NEEDLE: the mutated FILE must differ, and the check must fail naming NEEDLE.
  expect_failure() {
    local out
    if cmp -s "$2" "$2.orig"; then
      echo "self-test: $1: the mutation changed nothing" >&2; status=1; return
    fi
    if out=$(run 2>&1); then
      echo "self-test: $1: the check passed, it should have failed" >&2; status=1
    elif ! grep -q -- "$3" <<< "$out"; then
      echo "self-test: $1: the check failed without naming $3:" >&2; echo "$out" >&2; status=1
    else
      echo "self-test: $1: fails as it should:"; sed 's/^/    /' <<< "$out"
    fi
  }
  mutate() {  # mutate FILE COMMAND...: FILE := COMMAND FILE (keeping the original for comparison)
    local file=$1; shift
    cp "$file" "$file.orig"; "$@" "$file.orig" > "$file" || true
  }

  fresh
  if ! out=$(run 2>&1); then
    echo "self-test: the untouched copies already fail; fix that first:" >&2; echo "$out" >&2; return 1
  fi
  echo "self-test: untouched copies pass"

  fresh; mutate "$tmp/configuration.md" grep -v "^| \`$var\` |"
  expect_failure "(a) the row of $var deleted from configuration.md" "$tmp/configuration.md" "no row whose first cell is \`$var\`"
  fresh; mutate "$tmp/env.example" grep -v "^$var="
  expect_failure "(b) the line $var= deleted from .env.example" "$tmp/env.example" "no $var= line"
  fresh; mutate "$tmp/configuration.md" sed "s/^| \`$var\` | \`[^\`]*\`/| \`$var\` | \`changed-by-self-test\`/"
  expect_failure "(c) the default of $var changed in configuration.md" "$tmp/configuration.md" "default of $var"
  fresh; mutate "$tmp/operations.md" grep -v -- "$metric"
  expect_failure "(d) every line naming $metric deleted from operations.md" "$tmp/operations.md" "metric $metric"
  # (f), (g) A family read by prefix (KAFKA_PROPERTY_<NAME>): its row, and its commented examples.
  fresh; mutate "$tmp/configuration.md" grep -v '^| `KAFKA_PROPERTY_<NAME>` |'
  expect_failure "(f) the row of KAFKA_PROPERTY_<NAME> deleted from configuration.md" "$tmp/configuration.md" "no row whose first cell is \`KAFKA_PROPERTY_<NAME>\`"
  fresh; mutate "$tmp/env.example" grep -v '^# KAFKA_PROPERTY_[A-Z_]*='
  expect_failure "(g) the commented KAFKA_PROPERTY_ examples deleted from .env.example" "$tmp/env.example" "no commented example"

  # (e) A tree of links to the repository's files, with README.md a copy whose first link to
  # docs/configuration.md points at a page that does not exist.
  mkdir -p "$tmp/tree"
  for entry in "$root"/*; do ln -s "$entry" "$tmp/tree/"; done
  rm "$tmp/tree/README.md"; cp "$root/README.md" "$tmp/tree/README.md"
  if ! out=$(check_links "$tmp/tree" 2>&1); then
    echo "self-test: the copied pages' links already fail:" >&2; echo "$out" >&2; return 1
  fi
  sed -i '0,/](docs\/configuration.md)/s//](docs\/no-such-page.md)/' "$tmp/tree/README.md"
  if out=$(check_links "$tmp/tree" 2>&1); then
    echo "self-test: (e) a dead link in README.md: the check passed, it should have failed" >&2; status=1
  elif ! grep -q "no-such-page.md" <<< "$out"; then
    echo "self-test: (e) a dead link in README.md: the check failed without naming it:" >&2; echo "$out" >&2; status=1
  else
    echo "self-test: (e) a dead link in README.md: fails as it should:"; sed 's/^/    /' <<< "$out"
  fi
  return $status
}

# Every relative link of README.md, PERFORMANCE.md and docs/*.md names a file that exists and, for
# a Markdown page, a heading it has (GitHub's anchors): the manual is split over pages, and a
# section moved must not leave a dead link behind.
check_links() {  # check_links [ROOT]
  python3 - "${1:-$root}" <<'PY'
import glob, os, re, sys
root = sys.argv[1]
pages = [os.path.join(root, "README.md"), os.path.join(root, "PERFORMANCE.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md")))
def anchor(heading):
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
anchors = {page: {anchor(h) for h in re.findall(r"^#+ (.*)$", open(page).read(), re.M)} for page in pages}
dead = []
for page in pages:
    for target in re.findall(r"\]\(([^)\s]+)\)", open(page).read()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, fragment = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(resolved):
            dead.append(f"{os.path.relpath(page, root)}: link to {target}: no such file")
        elif fragment and resolved.endswith(".md") and fragment not in anchors.get(resolved, set()):
            dead.append(f"{os.path.relpath(page, root)}: link to {target}: no heading with that anchor")
if dead:
    print("\n".join(f"check-docs: {d}" for d in dead), file=sys.stderr)
    sys.exit(1)
print(f"OK: every relative link of {len(pages)} pages resolves")
PY
}

case "${1:-}" in
  "") check && check_links ;;
  --self-test) self_test ;;
  *) echo "usage: $0 [--self-test]" >&2; exit 2 ;;
esac
