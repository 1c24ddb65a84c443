#!/usr/bin/env python3
"""An independent gRPC client for the wire tests: Python grpcio (gRPC's C core), which shares no
code with the service. GRPCWireTests runs it against a real service and checks the table.

    grpcio_client.py PORT SCENARIO [ARGS...]

Prints one JSON object on stdout: what each step got back (status code names, counts). The stubs
are generated from the repository's protos/ by grpcio-tools into a temporary directory, so the
messages are encoded by the protobuf library, not by hand.

Scenarios:
  inflight USERS LOGINS     USERS x LOGINS login events (each with its own id) started at once on
                            one connection, then each answer's code counted
  edges                     a deadline that expires, a gzip-compressed message, an unknown method
                            and service, a 2 MiB message, the health service
  resets COUNT              COUNT calls started and cancelled at once (RST_STREAM), then one call
  disconnect COUNT          COUNT calls started, the connection closed under them, then one call on
                            a new connection
  waiting COUNT             COUNT logins without an id, each its own user, started at once on one
                            connection (durable mode with the database away: each waits for its
                            commit), then each answer's code counted (scripts/measure-memory.sh)
  bridge RATE LANES FILE    the events of FILE (JSON lines: kind login or stat, id, user, and for a
                            stat code, value, inc) at RATE a second, as the platform's bridge sends
                            them: LANES threads on one connection, each owning a fixed set of users
                            (their events keep their order), each event due at its line's place
                            in the file at RATE;
                            a call not answered OK is sent again, same event, 50 ms later, until it
                            is (INVALID_ARGUMENT stops the run). Prints attempts, acknowledgements,
                            the codes of the refusals, and the rate the first tries kept
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import grpc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMESPACE = "test-ns"


def load_stubs():
    out = tempfile.mkdtemp(prefix="wire-stubs-")
    import grpc_tools

    includes = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    protos = ["accelbyte/iam/account/v1/user_logged_in.proto", "accelbyte/social/statistic/v1/stat_item_updated.proto"]
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT}/protos", f"-I{includes}",
         f"--python_out={out}", f"--grpc_python_out={out}", *protos],
        check=True)
    sys.path.insert(0, out)
    from accelbyte.iam.account.v1 import user_logged_in_pb2, user_logged_in_pb2_grpc
    return user_logged_in_pb2, user_logged_in_pb2_grpc


def load_stat_stubs():
    """The statistic service's stubs (load_stubs generated them; call it first)."""
    from accelbyte.social.statistic.v1 import stat_item_updated_pb2, stat_item_updated_pb2_grpc
    return stat_item_updated_pb2, stat_item_updated_pb2_grpc


def code_of(call):
    try:
        call.result()
        return "OK"
    except grpc.RpcError as error:
        return error.code().name
    except grpc.FutureCancelledError:
        return "CANCELLED"


def login(pb, user, event_id=None):
    return pb.UserLoggedIn(id=event_id or str(uuid.uuid4()), namespace=NAMESPACE, user_id=user)


def inflight(channel, pb, stub, users, logins):
    names = [f"wire-{i:04d}-{uuid.uuid4().hex[:8]}" for i in range(users)]
    calls = [stub.OnMessage.future(login(pb, name), timeout=120) for _ in range(logins) for name in names]
    codes = {}
    for call in calls:
        code = code_of(call)
        codes[code] = codes.get(code, 0) + 1
    return {"codes": codes, "users": names}


def waiting(channel, pb, stub, count):
    tag = uuid.uuid4().hex[:8]
    calls = [stub.OnMessage.future(pb.UserLoggedIn(id="", namespace=NAMESPACE, user_id=f"waiting-{tag}-{i:06d}"), timeout=600)
             for i in range(count)]
    codes = {}
    for call in calls:
        code = code_of(call)
        codes[code] = codes.get(code, 0) + 1
    return {"codes": codes}


def edges(channel, pb, stub):
    result = {}
    # A deadline that expires: the service answers DEADLINE_EXCEEDED (in durable mode the call
    # waits for a flush far longer than 50 ms; in buffered mode the answer comes first and is OK).
    try:
        stub.OnMessage(login(pb, "wire-deadline"), timeout=0.05)
        result["deadline"] = "OK"
    except grpc.RpcError as error:
        result["deadline"] = error.code().name
    try:
        stub.OnMessage(login(pb, "wire-gzip"), compression=grpc.Compression.Gzip)
        result["gzip"] = "OK"
    except grpc.RpcError as error:
        result["gzip"] = error.code().name
        result["gzip_accept"] = dict(error.trailing_metadata() or ()).get("grpc-accept-encoding")
    for name, path in [("unknown_method", "/accelbyte.iam.account.v1.UserAuthenticationUserLoggedInService/Nope"),
                       ("unknown_service", "/no.such.Service/OnMessage")]:
        try:
            channel.unary_unary(path)(b"", timeout=10)
            result[name] = "OK"
        except grpc.RpcError as error:
            result[name] = error.code().name
            result[name + "_message"] = error.details()
    try:
        stub.OnMessage(login(pb, "wire-" + "u" * (2 << 20)), timeout=30)
        result["two_mib"] = "OK"
    except grpc.RpcError as error:
        result["two_mib"] = error.code().name
        result["two_mib_message"] = error.details()
    try:
        stub.OnMessage(pb.UserLoggedIn(id="wire-bad", namespace=NAMESPACE, user_id=""), timeout=10)
        result["invalid"] = "OK"
    except grpc.RpcError as error:
        result["invalid"] = error.code().name
        result["invalid_message"] = error.details()
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    health = health_pb2_grpc.HealthStub(channel)
    result["health"] = health_pb2.HealthCheckResponse.ServingStatus.Name(
        health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
    result["health_watch"] = health_pb2.HealthCheckResponse.ServingStatus.Name(next(watch).status)
    watch.cancel()
    return result


def resets(channel, pb, stub, count):
    calls = [stub.OnMessage.future(login(pb, f"wire-reset-{i}"), timeout=60) for i in range(count)]
    for call in calls:
        call.cancel()
    codes = {}
    for call in calls:
        code = code_of(call)
        codes[code] = codes.get(code, 0) + 1
    stub.OnMessage(login(pb, "wire-after-resets"), timeout=30)
    return {"codes": codes, "after": "OK"}


def disconnect(port, pb, grpc_stubs, count):
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = grpc_stubs.UserAuthenticationUserLoggedInServiceStub(channel)
    calls = [stub.OnMessage.future(login(pb, f"wire-disconnect-{i}"), timeout=60) for i in range(count)]
    channel.close()
    codes = {}
    for call in calls:
        code = code_of(call)
        codes[code] = codes.get(code, 0) + 1
    with grpc.insecure_channel(f"127.0.0.1:{port}") as fresh:
        grpc_stubs.UserAuthenticationUserLoggedInServiceStub(fresh).OnMessage(login(pb, "wire-after-disconnect"), timeout=30)
    return {"codes": codes, "after": "OK"}


def lane_of(user, lanes):
    """FNV-1a 32 of the user id, as BridgeLoad.lane(of:lanes:) computes it."""
    h = 2166136261
    for byte in user.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h % lanes


def bridge(channel, pb, stub, rate, lanes, path):
    stat_pb, stat_grpc = load_stat_stubs()
    stat_stub = stat_grpc.StatisticStatItemUpdatedServiceStub(channel)
    messages = [[] for _ in range(lanes)]
    with open(path) as f:
        for n, line in enumerate(f):
            event = json.loads(line)
            if event["kind"] == "login":
                call, message = stub.OnMessage, login(pb, event["user"], event["id"])
            else:
                item = stat_pb.StatItem(stat_code=event["code"], user_id=event["user"],
                                        latest_value=event["value"], inc=event["inc"])
                message = stat_pb.StatItemUpdated(payload=item, id=event["id"], namespace=NAMESPACE, user_id=event["user"])
                call = stat_stub.OnMessage
            # Due at its place in the file: the whole stream keeps RATE, however unevenly the
            # users fall into lanes.
            messages[lane_of(event["user"], lanes)].append((n / rate, call, message))
    lock = threading.Lock()
    tally = {"attempts": 0, "acknowledged": 0, "refused": {}, "late_first_tries": 0, "failure": None}
    started = time.monotonic()

    def send(mine):
        for offset, call, message in mine:
            due = started + offset
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            elif now - due > 1:
                with lock:
                    tally["late_first_tries"] += 1
            while True:
                try:
                    call(message, timeout=2)
                    with lock:
                        tally["attempts"] += 1
                        tally["acknowledged"] += 1
                    break
                except grpc.RpcError as error:
                    code = error.code().name
                    with lock:
                        tally["attempts"] += 1
                        tally["refused"][code] = tally["refused"].get(code, 0) + 1
                        if code == "INVALID_ARGUMENT":
                            tally["failure"] = f"{message.id}: {error.details()}"
                    if code == "INVALID_ARGUMENT":
                        return
                    time.sleep(0.05)

    threads = [threading.Thread(target=send, args=(mine,)) for mine in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tally["seconds"] = round(time.monotonic() - started, 3)
    tally["scheduled_seconds"] = round(sum(len(mine) for mine in messages) / rate, 3)
    return tally


def main():
    port, scenario, *args = sys.argv[1:]
    pb, grpc_stubs = load_stubs()
    if scenario == "disconnect":
        print(json.dumps(disconnect(port, pb, grpc_stubs, int(args[0]))))
        return
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = grpc_stubs.UserAuthenticationUserLoggedInServiceStub(channel)
        if scenario == "inflight":
            out = inflight(channel, pb, stub, int(args[0]), int(args[1]))
        elif scenario == "waiting":
            out = waiting(channel, pb, stub, int(args[0]))
        elif scenario == "edges":
            out = edges(channel, pb, stub)
        elif scenario == "resets":
            out = resets(channel, pb, stub, int(args[0]))
        elif scenario == "bridge":
            out = bridge(channel, pb, stub, float(args[0]), int(args[1]), args[2])
        else:
            raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
