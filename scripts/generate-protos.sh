#!/usr/bin/env bash
# Regenerates the Swift code in Sources/GameEvents/Generated/ from protos/ with Debian's protoc
# and the two Swift protoc plugins. The generated code is committed, so a normal build never
# runs this script (nor builds protoc or the plugins).
#
# The plugins (protoc-gen-swift, protoc-gen-grpc-swift-2) are built once, in release mode, from
# a checkout of grpc-swift-protobuf (the version Package.swift uses) into .build-protoc/, which
# git ignores. The GRPCProtobufGenerator build plugin is avoided on purpose: it compiles a
# vendored protoc from C++ on every clean build (+12 minutes).
#
# Two modules: the messages (`*.pb.swift`) in Sources/GameEvents/Generated/, which the service
# uses with SwiftProtobuf alone, and the grpc-swift stubs (`*.grpc.swift`) in
# Sources/GameEventsGRPC/Generated/, which only clients (make demo, tests, the load tools) use: the
# service's own server (UnaryGRPC) never builds grpc-swift, its transport, or their TLS stack.
#
# Idempotent: files are only rewritten when their content changes, and stale generated files
# are removed. Usage: scripts/generate-protos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

grpc_protobuf_version=2.4.1   # grpc-swift-protobuf, as in Package.swift
swift_protobuf_version=1.39.0 # swift-protobuf: the runtime the generated code is written for
grpc_protobuf_url=${GRPC_SWIFT_PROTOBUF_URL:-https://github.com/grpc/grpc-swift-protobuf.git}
cache=$root/.build-protoc
checkout=$cache/grpc-swift-protobuf
bindir=$cache/bin
stamp=$bindir/VERSION
proto_dir=protos
messages_out=$root/Sources/GameEvents/Generated
stubs_out=$root/Sources/GameEventsGRPC/Generated

say() { echo "generate-protos: $*"; }

# 1. protoc and the well-known types (google/protobuf/empty.proto, struct.proto). Debian's
#    protobuf-compiler ships protoc; the .proto files of the well-known types come with
#    libprotobuf-dev (only "recommended" by protobuf-compiler), under /usr/include.
include=/usr/include
if ! command -v protoc >/dev/null 2>&1 || [ ! -f "$include/google/protobuf/empty.proto" ] ||
  [ ! -f "$include/google/protobuf/struct.proto" ]; then
  say "installing protobuf-compiler and libprotobuf-dev"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends protobuf-compiler libprotobuf-dev
fi
for f in empty struct; do
  [ -f "$include/google/protobuf/$f.proto" ] || {
    echo "generate-protos: google/protobuf/$f.proto not found under $include" >&2
    exit 1
  }
done
say "using $(protoc --version) ($(command -v protoc)), well-known types from $include"

# 2. The plugins, built once per version.
want="grpc-swift-protobuf $grpc_protobuf_version, swift-protobuf $swift_protobuf_version"
if [ -x "$bindir/protoc-gen-swift" ] && [ -x "$bindir/protoc-gen-grpc-swift-2" ] &&
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  say "plugins up to date in ${bindir#"$root"/} ($want)"
else
  say "building the protoc plugins ($want) in ${cache#"$root"/}"
  mkdir -p "$cache"
  if [ ! -d "$checkout/.git" ]; then
    rm -rf "$checkout"
    git clone -q "$grpc_protobuf_url" "$checkout"
  fi
  if [ "$(git -C "$checkout" describe --tags --exact-match 2>/dev/null)" != "$grpc_protobuf_version" ]; then
    git -C "$checkout" fetch -q --tags origin
    git -C "$checkout" checkout -q -f --detach "refs/tags/$grpc_protobuf_version"
  fi
  (
    cd "$checkout"
    swift package resolve
    # protoc-gen-swift comes from swift-protobuf: pin it to the runtime version the package uses.
    swift package resolve swift-protobuf --version "$swift_protobuf_version"
    swift build -c release --product protoc-gen-grpc-swift-2
    swift build -c release --product protoc-gen-swift
  )
  bin=$(cd "$checkout" && swift build -c release --show-bin-path)
  mkdir -p "$bindir"
  cp "$bin/protoc-gen-swift" "$bin/protoc-gen-grpc-swift-2" "$bindir/"
  echo "$want" >"$stamp"
fi
got=$("$bindir/protoc-gen-swift" --version)
[ "$got" = "protoc-gen-swift $swift_protobuf_version" ] || {
  echo "generate-protos: expected protoc-gen-swift $swift_protobuf_version, got '$got'" >&2
  exit 1
}

# 3. Generate into temporary directories, then update the two Generated/ directories in place.
mapfile -t files < <(cd "$proto_dir" && find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)
[ ${#files[@]} -gt 0 ] || { echo "generate-protos: no .proto files under $proto_dir/" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/messages" "$tmp/stubs"
say "protoc on: ${files[*]}"
protoc \
  --proto_path="$proto_dir" --proto_path="$include" \
  --plugin=protoc-gen-swift="$bindir/protoc-gen-swift" \
  --plugin=protoc-gen-grpc-swift-2="$bindir/protoc-gen-grpc-swift-2" \
  --swift_out="$tmp/messages" \
  --swift_opt=Visibility=Public,FileNaming=PathToUnderscores \
  --grpc-swift-2_out="$tmp/stubs" \
  --grpc-swift-2_opt=Visibility=Public,Server=true,Client=true,FileNaming=PathToUnderscores,ExtraModuleImports=GameEvents \
  "${files[@]}"

changed=0
sync_dir() { # sync_dir GENERATED OUT
  local from=$1 out=$2 f name
  mkdir -p "$out"
  for f in "$from"/*.swift; do
    name=$(basename "$f")
    if cmp -s "$f" "$out/$name"; then
      say "unchanged ${out#"$root"/}/$name"
    else
      cp "$f" "$out/$name"
      say "wrote     ${out#"$root"/}/$name"
      changed=$((changed + 1))
    fi
  done
  for f in "$out"/*; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    if [ ! -e "$from/$name" ]; then
      rm -f "$f"
      say "removed   ${out#"$root"/}/$name (no longer generated)"
      changed=$((changed + 1))
    fi
  done
}
sync_dir "$tmp/messages" "$messages_out"
sync_dir "$tmp/stubs" "$stubs_out"
say "done: $changed file(s) changed"
