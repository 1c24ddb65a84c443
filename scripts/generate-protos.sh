#!/usr/bin/env bash
# Regenerates Sources/GameEvents from protos/ with Debian's protoc and the two Swift plugins.
# The generated code is committed, so a normal build never runs this (nor builds protoc).
#
# The plugins are built once from grpc-swift-protobuf (the version Package.swift uses) into
# .build-protoc/ (ignored by git). The GRPCProtobufGenerator build plugin is avoided on purpose:
# it compiles a vendored protoc from C++ on every clean build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=2.4.1
cache=$root/.build-protoc

if ! command -v protoc >/dev/null; then
  echo "installing protobuf-compiler"
  apt-get update -qq && apt-get install -y -qq protobuf-compiler
fi

if [ ! -x "$cache/bin/protoc-gen-swift" ] || [ ! -x "$cache/bin/protoc-gen-grpc-swift-2" ]; then
  mkdir -p "$cache/bin"
  if [ ! -d "$cache/grpc-swift-protobuf" ]; then
    git clone -q --branch "$version" https://github.com/grpc/grpc-swift-protobuf.git "$cache/grpc-swift-protobuf"
  fi
  (cd "$cache/grpc-swift-protobuf" &&
    swift build -c release --product protoc-gen-grpc-swift-2 &&
    swift build -c release --product protoc-gen-swift)
  bin=$(cd "$cache/grpc-swift-protobuf" && swift build -c release --show-bin-path)
  cp "$bin/protoc-gen-swift" "$bin/protoc-gen-grpc-swift-2" "$cache/bin/"
fi

# google/protobuf/{empty,struct}.proto ship with Debian's protobuf headers.
include=/usr/include
[ -f "$include/google/protobuf/empty.proto" ] || { echo "google/protobuf/empty.proto not found under $include" >&2; exit 1; }

out=$root/Sources/GameEvents/Generated
rm -rf "$out"
mkdir -p "$out"
mapfile -t files < <(cd protos && find . -name '*.proto' | sed 's|^\./||' | sort)
protoc \
  --proto_path=protos --proto_path="$include" \
  --plugin=protoc-gen-swift="$cache/bin/protoc-gen-swift" \
  --plugin=protoc-gen-grpc-swift-2="$cache/bin/protoc-gen-grpc-swift-2" \
  --swift_out="$out" --swift_opt=Visibility=Public,FileNaming=PathToUnderscores \
  --grpc-swift-2_out="$out" --grpc-swift-2_opt=Visibility=Public,Server=true,Client=true,FileNaming=PathToUnderscores \
  "${files[@]}"
echo "generated from ${files[*]}:"
ls -1 "$out"
