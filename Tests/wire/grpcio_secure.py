#!/usr/bin/env python3
"""An independent gRPC client for the security tests: Python grpcio (gRPC's C core and its TLS),
which shares no code with the service. GRPCSecurityTests drives it one step at a time.

    grpcio_secure.py PORT

Reads one JSON object per line on stdin and answers one JSON object per line on stdout:

  {"channel": NAME, "ca": PEM_FILE?, "cert": PEM_FILE?, "key": PEM_FILE?,
   "token": TOKEN?, "call": "login" | "health" | "unknown"}
      -> {"code": "OK" | status name, "details": text}

A channel is made on its first step (TLS when "ca" is given, with a client certificate when
"cert" and "key" are; plaintext otherwise) and kept under NAME, so later steps reuse its
connection (a reload must not drop it). {"close": NAME} closes one.
"""
import json
import os
import sys
import uuid

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpcio_client import NAMESPACE, load_stubs  # noqa: E402


def read(path):
    with open(path, "rb") as f:
        return f.read()


def make_channel(port, step):
    if "ca" not in step:
        return grpc.insecure_channel(f"127.0.0.1:{port}")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(step["ca"]),
        private_key=read(step["key"]) if "key" in step else None,
        certificate_chain=read(step["cert"]) if "cert" in step else None)
    return grpc.secure_channel(f"localhost:{port}", credentials)


def run(channel, stubs, step):
    pb, grpc_stubs = stubs
    metadata = [("authorization", f"Bearer {step['token']}")] if "token" in step else None
    kind = step.get("call", "login")
    if kind == "login":
        stub = grpc_stubs.UserAuthenticationUserLoggedInServiceStub(channel)
        stub.OnMessage(pb.UserLoggedIn(id=str(uuid.uuid4()), namespace=NAMESPACE, user_id=step.get("user", "secure-user")),
                       timeout=10, metadata=metadata)
        return "OK"
    if kind == "health":
        from grpc_health.v1 import health_pb2, health_pb2_grpc
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10, metadata=metadata)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    channel.unary_unary("/no.such.Service/OnMessage")(b"", timeout=10, metadata=metadata)
    return "OK"


def main():
    port = sys.argv[1]
    stubs = load_stubs()
    channels = {}
    for line in sys.stdin:
        step = json.loads(line)
        if "close" in step:
            channel = channels.pop(step["close"], None)
            if channel:
                channel.close()
            print(json.dumps({"closed": step["close"]}), flush=True)
            continue
        name = step["channel"]
        if name not in channels:
            channels[name] = make_channel(port, step)
        try:
            answer = {"code": run(channels[name], stubs, step), "details": ""}
        except grpc.RpcError as error:
            answer = {"code": error.code().name, "details": error.details() or ""}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
