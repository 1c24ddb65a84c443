#!/usr/bin/env bash
# Runs the service against the local PostgreSQL that `make pg-start` started.
# Settings come from .env (copied from .env.example on first run) and the environment, which wins;
# the database settings point at the local cluster unless the environment says otherwise.
set -euo pipefail
bin=${1:?usage: run-local.sh BINARY PG_PORT}
port=${2:?usage: run-local.sh BINARY PG_PORT}
cd "$(dirname "$0")/.."

if [ ! -f .env ]; then
  cp .env.example .env
  echo "created .env from .env.example (edit it to change settings)"
fi

export DB_HOST=${DB_HOST:-127.0.0.1}
export DB_PORT=${DB_PORT:-$port}
export DB_NAME=${DB_NAME:-challenge_db}
export DB_USER=${DB_USER:-postgres}

echo "PostgreSQL: ${DB_HOST}:${DB_PORT}/${DB_NAME} (stop it with 'make pg-stop')"
echo "starting the event handler; Ctrl-C flushes what is buffered and stops it"
exec "$bin" serve
