#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora, Fuzz/corpus/<target>/ (committed; run again after
changing this file). Hand-written, realistic inputs: the shipped challenges files and
.env.example, the wire events of wire.md in JSON and binary protobuf, REDIS_URL forms, the
replies the deduplication's commands get, and gRPC calls as a client writes them (the HTTP/2
preface, SETTINGS, HEADERS in HPACK, DATA with the 5-byte gRPC prefix). Inputs the fuzzers
found (crashes and out-of-memory inputs, fixed since) live beside them as crash-* and oom-* files,
which this script keeps."""
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(ROOT)
CORPUS = os.path.join(ROOT, "corpus")


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


# --- protobuf, by hand ----------------------------------------------------------------------
def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def string(field, text):
    data = text.encode() if isinstance(text, str) else text
    return varint(field << 3 | 2) + varint(len(data)) + data


def double(field, value):
    return varint(field << 3 | 1) + struct.pack("<d", value)


def login(event_id, user, namespace="mygame"):
    account = string(1, user)
    payload = string(1, account)
    return string(1, payload) + string(2, event_id) + string(5, namespace) + string(9, user)


def stat(event_id, user, code, latest, inc, namespace="mygame"):
    item = string(1, namespace) + string(2, code) + string(3, user) + double(4, latest) + double(5, inc)
    return string(1, item) + string(2, event_id) + string(5, namespace) + string(9, user)


def deletion(event_id, user, namespace="mygame"):
    gdpr = string(1, user) + string(2, namespace)
    return string(1, string(1, gdpr)) + string(2, event_id) + string(5, namespace)


# --- HTTP/2 and HPACK, by hand --------------------------------------------------------------
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hpack_int(value, prefix_bits, first):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def literal(name, value, indexing=False):
    """A literal header field with a new name: without indexing (0x00) or with it (0x40)."""
    out = bytearray([0x40 if indexing else 0x00])
    for text in (name, value):
        data = text.encode()
        out += hpack_int(len(data), 7, 0) + data
    return bytes(out)


def request_headers(path, extra=(), method="POST", content_type="application/grpc"):
    block = literal(":method", method) + literal(":scheme", "http") + literal(":path", path)
    block += literal(":authority", "localhost:6565") + literal("content-type", content_type) + literal("te", "trailers")
    for name, value in extra:
        block += literal(name, value)
    return block


def grpc_message(message):
    return b"\x00" + struct.pack(">I", len(message)) + message


def settings(*pairs):
    return frame(0x4, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def call(stream, path, message, extra=()):
    return frame(0x1, 0x4, stream, request_headers(path, extra)) + frame(0x0, 0x1, stream, grpc_message(message))


LOGIN = "/accelbyte.iam.account.v1.UserAuthenticationUserLoggedInService/OnMessage"
STAT = "/accelbyte.social.statistic.v1.StatisticStatItemUpdatedService/OnMessage"
GDPR = "/accelbyte.iam.account.v1.DeletionAccountGdprGdprRequestDataDeletionResponseService/OnMessage"
HEALTH = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"


def main():
    for target in os.listdir(CORPUS) if os.path.isdir(CORPUS) else []:
        for name in os.listdir(os.path.join(CORPUS, target)):
            if not name.startswith(("crash-", "oom-")):
                os.remove(os.path.join(CORPUS, target, name))

    # catalog: the shipped files and a few small documents.
    for name in ("challenges.json", "challenges.legacy.json"):
        write("catalog", name, open(os.path.join(REPO, "config", name), "rb").read())
    write("catalog", "minimal.json", '{"challenges": [{"challengeId": "c", "goals": [{"goalId": "g", "eventSource": "login", '
          '"requirement": {"operator": ">=", "targetValue": 1}, "reward": {"type": "ITEM", "rewardId": "r", "quantity": 1}}]}]}')
    write("catalog", "problems.json", '{"challenges": [{"challengeId": "c\\u0001", "GoalS": [], "goals": [{"goalId": "g", '
          '"goalId": "h", "eventSource": "statistic", "requirement": {"statCode": "", "operator": ">", "targetValue": 1.5}, '
          '"reward": {"type": "COIN", "rewardId": "r", "quantity": 0}, "prerequisites": ["g", "x"]}]}], "extra": null}')
    write("catalog", "rotation.json", '\ufeff{"challenges": [{"challengeId": "weekly", "goals": [{"goalId": "w", '
          '"eventSource": "statistic", "requirement": {"statCode": "kills", "operator": ">=", "targetValue": 2147483647, '
          '"progressMode": "relative"}, "reward": {"type": "WALLET", "rewardId": "GOLD", "quantity": 5}, '
          '"rotation": {"enabled": true, "type": "global", "schedule": "weekly", "onExpiry": {"resetProgress": true, '
          '"allowReselection": false}}, "type": "daily", "daily": true}]}]}')

    # kafka-value: a selector byte (topic, encoding), then the record's value.
    json_login = '{"id":"evt-1","namespace":"mygame","userId":"player-1","payload":{"userAccount":{"userId":"player-1"}}}'
    json_stat = '{"id":"evt-2","namespace":"mygame","userId":"player-1","payload":{"statCode":"kills","latestValue":42,"inc":2}}'
    json_gdpr = '{"id":"evt-3","namespace":"mygame","userId":"player-1","payload":{"deletionGDPR":{"userId":"player-1","namespace":"mygame"}}}'
    write("kafka-value", "login.json", b"\x00" + json_login.encode())
    write("kafka-value", "stat.json", b"\x01" + json_stat.encode())
    write("kafka-value", "gdpr.json", b"\x02" + json_gdpr.encode())
    write("kafka-value", "unknown-topic.json", b"\x03" + json_login.encode())
    write("kafka-value", "stat-extras.json", b"\x01" + b'{"id":"evt-4","namespace":"mygame","userId":"p\\u00e9","version":"3",'
          b'"timestamp":"2026-01-01T00:00:00Z","payload":{"statCode":"matches-won","latestValue":"NaN","inc":-1e300,'
          b'"additionalData":{"k":[1,true,null]},"futureField":1}}')
    write("kafka-value", "other-namespace.json", b"\x00" + json_login.replace("mygame", "othergame").encode())
    write("kafka-value", "login.pb", b"\x04" + login("evt-5", "player-2"))
    write("kafka-value", "stat.pb", b"\x05" + stat("evt-6", "player-2", "kills", 12.0, 2.0))
    write("kafka-value", "gdpr.pb", b"\x06" + deletion("evt-7", "player-2"))

    # dotenv: the shipped example and the format's corners.
    write("dotenv", "env.example", open(os.path.join(REPO, ".env.example"), "rb").read())
    write("dotenv", "quoting.env", 'export AB_NAMESPACE="mygame"\r\n# comment\n\nGRPC_PORT = 7000 # inline\n'
          "LOG_FORMAT='json'\nBUFFER_FLUSH_INTERVAL=1m30s\nDEDUP_LEASE=\"45s\"\nACK_MODE=durable\nLOG_LEVEL=warn\n"
          'GRPC_HOST="a\\"b\\n"\n')
    write("dotenv", "redis-kafka.env", "AB_NAMESPACE=mygame\nREDIS_URL=redis://:secret@cache:6380/2\nREDIS_POOL_SIZE=4\n"
          "DEDUP_FAIL_MODE=closed\nKAFKA_BROKERS=broker-1:9092,broker-2:9092\nKAFKA_GROUP_ID=event-handler\n"
          "KAFKA_PROPERTY_FETCH_MIN_BYTES=1024\nGRPC_MAX_CONNECTION_IDLE=off\nGRPC_KEEPALIVE_TIME=0\n")

    # redis-url
    for i, url in enumerate(["redis://localhost:6379/0", "redis://:s3cret@cache:6380/2", "redis://app:p@ss@10.0.0.7",
                             "redis://worker@redis.internal:7000/", "redis://[::1]:6379", "rediss://h:6379"]):
        write("redis-url", f"url-{i}", url)

    # redis-reply: a split byte, then replies as a server writes them (the deduplication's
    # SET NX PX GET, EVAL, GET; errors; nesting).
    replies = {
        "set-ok": b"+OK\r\n",
        "set-nx-get": b"$-1\r\n$1\r\nc\r\n$24\r\nlease:4f2a:1767225600000\r\n",
        "eval": b":1\r\n:0\r\n",
        "error": b"-NOAUTH Authentication required.\r\n-ERR unknown command 'FOO'\r\n",
        "arrays": b"*3\r\n$3\r\nSET\r\n*2\r\n:-42\r\n*-1\r\n$0\r\n\r\n",
        "binary": b"$6\r\n\x00\xff\r\n\xc3\xa9\r\n",
    }
    for name, data in replies.items():
        write("redis-reply", name, bytes([len(data) // 2]) + data)

    # grpc: whole client connections.
    opening = PREFACE + settings((0x3, 100), (0x4, 65535))
    write("grpc", "login", opening + call(1, LOGIN, login("evt-1", "player-1")))
    write("grpc", "stat", opening + call(1, STAT, stat("evt-2", "player-1", "kills", 42.0, 2.0), [("grpc-timeout", "5S")]))
    write("grpc", "deletion", opening + call(1, GDPR, deletion("evt-3", "player-1"), [("grpc-timeout", "100m")]))
    write("grpc", "health", opening + call(1, HEALTH, string(1, "")) + call(3, WATCH, b""))
    write("grpc", "several", opening + call(1, LOGIN, login("a", "u1")) + call(3, STAT, stat("b", "u1", "matches-won", 3, 1))
          + call(5, LOGIN, login("", "")) + call(7, "/no.Such/Method", b"") + frame(0x6, 0, 0, b"12345678"))
    write("grpc", "refusals", opening
          + frame(0x1, 0x5, 1, request_headers(LOGIN, method="GET"))
          + frame(0x1, 0x5, 3, request_headers(LOGIN, content_type="text/plain"))
          + call(5, LOGIN, login("c", "u2"), [("grpc-encoding", "gzip")])
          + call(7, STAT, b"", [("grpc-timeout", "bogus")])
          + frame(0x1, 0x4, 9, request_headers(STAT)) + frame(0x0, 0x0, 9, b"\x00\x00\x01\x00\x00")
          + frame(0x1, 0x4, 11, request_headers(STAT)) + frame(0x0, 0x0, 11, b"\x00\x00\x00") + frame(0x3, 0, 11, b"\x00\x00\x00\x08"))
    # The first call adds :method, :scheme, :path and content-type to the dynamic table (62 is the
    # newest), the second names them by index.
    indexed = (literal(":method", "POST", indexing=True) + literal(":scheme", "http", indexing=True)
               + literal(":path", LOGIN, indexing=True) + literal("content-type", "application/grpc", indexing=True))
    write("grpc", "hpack-indexing", opening + frame(0x1, 0x4, 1, indexed) + frame(0x0, 0x1, 1, grpc_message(login("d", "u3")))
          + frame(0x1, 0x4, 3, bytes([0xC1, 0xC0, 0xBF, 0xBE])) + frame(0x0, 0x1, 3, grpc_message(login("e", "u3"))))
    write("grpc", "goaway", opening + call(1, LOGIN, login("f", "u4")) + frame(0x7, 0, 0, b"\x00\x00\x00\x01\x00\x00\x00\x00"))
    # A client whose HPACK decoder allows a larger dynamic table (SETTINGS_HEADER_TABLE_SIZE): the
    # server's encoder may announce a table up to it (found by the fuzzer in CI, as a false alarm
    # of the response checker, which had kept HPACK's initial 4,096 bytes).
    write("grpc", "header-table-size", PREFACE + settings((0x1, 32868), (0x3, 100)) + call(1, LOGIN, login("g", "u5"))
          + call(3, LOGIN, login("h", "u5")))


if __name__ == "__main__":
    main()
