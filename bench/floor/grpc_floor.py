#!/usr/bin/env python3
"""The gRPC server's own cost per call, without the service's work: grpc.health.v1.Health/Check,
which decodes a tiny request and answers from memory, called at a fixed rate on one connection
(one call per 1/RATE s, as the generator paces events), and the server's CPU (utime + stime of
PID from /proc) over the calls.

    grpc_floor.py PORT PID [RATE=1000] [SECONDS=20]
"""
import os
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    rate = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    seconds = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        check = health_pb2_grpc.HealthStub(channel).Check
        request = health_pb2.HealthCheckRequest(service="")
        check(request, timeout=10)
        calls = rate * seconds
        start_cpu = cpu_seconds(pid)
        start = time.monotonic()
        pending = []
        for i in range(calls):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pending.append(check.future(request, timeout=10))
            if len(pending) >= 100:
                for call in pending:
                    call.result()
                pending.clear()
        for call in pending:
            call.result()
        elapsed = time.monotonic() - start
        used = cpu_seconds(pid) - start_cpu
    print(f"grpc floor: {calls} Health/Check calls in {elapsed:.1f} s ({calls / elapsed:.0f}/s): "
          f"server CPU {used:.2f} s, {used / calls * 1e6:.1f} us per call")


if __name__ == "__main__":
    main()
