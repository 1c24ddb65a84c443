#!/usr/bin/env python3
"""Hostile transport against the service's gRPC port, while a well-behaved client keeps calling.

    hostile_transport.py PORT PID IDLE_CONNECTIONS
    hostile_transport.py PORT limit CONNECTIONS

Opens IDLE_CONNECTIONS connections that stay idle (half of them say nothing at all, half send
the HTTP/2 preface and SETTINGS and then nothing), one that speaks HTTP/1.1, one that sends
garbage, and one that opens a call and sends half of its message and stops. Meanwhile a grpcio
client makes calls on its own connection. Prints one JSON object: the service's RSS (VmRSS of
PID, KiB) before, with everything open, and after it is all closed; what became of the HTTP/1.1
and garbage connections (closed by the server, or not within 10 s); the well-behaved client's
answer codes; the idle connections still open at the end.

With `limit`, opens CONNECTIONS connections (preface and SETTINGS on each) and prints how many
the server closed within two seconds (those past GRPC_MAX_CONNECTIONS).

With `malformed`, for each kind of malformed request headers (RFC 9113, 8.2 and 8.3: an
upper-case name, no :path, a connection-specific header, a pseudo-header after a regular one, a
repeated :path, a TE other than trailers), opens a connection (h2, a pure-Python HTTP/2 stack,
told not to check what it sends), sends that request on stream 1 and a health check on stream 3,
and prints what became of each: stream 1's RST_STREAM code, stream 3's grpc-status, and whether
the connection was still open a second later.
"""
import json
import os
import resource
import socket
import sys
import time
import uuid

import grpc
import h2.config
import h2.connection

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpcio_client import NAMESPACE, load_stubs  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def closed_by_server(sock, seconds=10):
    """True when the server closes the connection (EOF or reset) within `seconds`."""
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def half_message(port):
    """A call whose 5-byte prefix announces 1,000 bytes, of which 100 are sent; then nothing."""
    sock = connect(port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    stream = conn.get_next_available_stream_id()
    conn.send_headers(stream, [
        (":method", "POST"), (":scheme", "http"), (":authority", f"127.0.0.1:{port}"),
        (":path", "/accelbyte.iam.account.v1.UserAuthenticationUserLoggedInService/OnMessage"),
        ("content-type", "application/grpc"), ("te", "trailers"),
    ])
    conn.send_data(stream, b"\x00" + (1000).to_bytes(4, "big") + b"\x0a" * 100)
    sock.sendall(conn.data_to_send())
    return sock


def limit(port, count):
    socks = []
    for _ in range(count):
        sock = connect(port)
        sock.sendall(PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        socks.append(sock)
    time.sleep(2)
    closed = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            while True:
                if sock.recv(65536) == b"":
                    closed += 1
                    break
        except BlockingIOError:
            pass
        except (ConnectionResetError, BrokenPipeError):
            closed += 1
        sock.close()
    return {"closed_by_server": closed}


def malformed(port):
    import h2.events

    request = [(":method", "POST"), (":scheme", "http"), (":path", "/grpc.health.v1.Health/Check"),
               (":authority", "127.0.0.1"), ("content-type", "application/grpc"), ("te", "trailers")]
    cases = {
        "uppercase_name": request + [("X-Upper", "1")],
        "no_path": [h for h in request if h[0] != ":path"],
        "connection_header": request + [("connection", "keep-alive")],
        "pseudo_after_regular": request[:2] + [("content-type", "application/grpc"), (":path", request[2][1])],
        "repeated_path": request + [(":path", "/other")],
        "te_not_trailers": request[:5] + [("te", "gzip")],
    }
    config = h2.config.H2Configuration(client_side=True, validate_outbound_headers=False,
                                       normalize_outbound_headers=False, validate_inbound_headers=False)
    results = {}
    for name, headers in cases.items():
        conn = h2.connection.H2Connection(config)
        conn.initiate_connection()
        sock = connect(port)
        for stream, block in ((1, headers), (3, request)):
            conn.send_headers(stream, block)
            conn.send_data(stream, b"\x00\x00\x00\x00\x00", end_stream=True)  # an empty HealthCheckRequest
        sock.sendall(conn.data_to_send())
        result = {"reset": None, "status": None, "open": True}
        sock.settimeout(1)
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    result["open"] = False
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.StreamReset) and event.stream_id == 1:
                        result["reset"] = int(event.error_code)
                    elif isinstance(event, h2.events.TrailersReceived) and event.stream_id == 3:
                        result["status"] = dict(event.headers).get(b"grpc-status", b"").decode()
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        result["open"] = False
                sock.sendall(conn.data_to_send())
        except socket.timeout:
            pass
        except (ConnectionResetError, BrokenPipeError):
            result["open"] = False
        sock.close()
        results[name] = result
    return {"cases": results}


def main():
    if sys.argv[2] == "malformed":
        print(json.dumps(malformed(int(sys.argv[1]))))
        return
    if sys.argv[2] == "limit":
        print(json.dumps(limit(int(sys.argv[1]), int(sys.argv[3]))))
        return
    port, pid, idle = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    pb, grpc_stubs = load_stubs()
    result = {"rss_before_kib": rss_kib(pid)}

    idle_socks = []
    for i in range(idle):
        sock = connect(port)
        if i % 2:
            sock.sendall(PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # empty SETTINGS
        idle_socks.append(sock)
    http1 = connect(port)
    http1.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    garbage = connect(port)
    garbage.sendall(os.urandom(4096))
    half = half_message(port)

    codes = {}
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = grpc_stubs.UserAuthenticationUserLoggedInServiceStub(channel)
        for i in range(200):
            try:
                stub.OnMessage(pb.UserLoggedIn(id=str(uuid.uuid4()), namespace=NAMESPACE, user_id="hostile-neighbour"), timeout=10)
                code = "OK"
            except grpc.RpcError as error:
                code = error.code().name
            codes[code] = codes.get(code, 0) + 1
    result["neighbour_codes"] = codes
    result["http1_closed"] = closed_by_server(http1)
    result["garbage_closed"] = closed_by_server(garbage)
    result["rss_loaded_kib"] = rss_kib(pid)

    open_count = 0
    for sock in idle_socks:
        sock.setblocking(False)
        try:
            open_count += 0 if sock.recv(65536) == b"" else 1
        except BlockingIOError:
            open_count += 1
        except (ConnectionResetError, BrokenPipeError):
            pass
    result["idle_still_open"] = open_count
    for sock in idle_socks + [http1, garbage, half]:
        sock.close()
    time.sleep(2)
    result["rss_after_kib"] = rss_kib(pid)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
