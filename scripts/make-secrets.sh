#!/usr/bin/env bash
# Makes the passwords docker compose mounts as secrets, if missing: ./secrets/db_password and
# ./secrets/redis_password, 32 random hex characters each. The directory is private to you
# (0700); the files inside are 0644 because compose bind-mounts them as they are, and the
# handler's container user (uid 10001) must be able to read them. Existing files are kept: to
# change a password, change it in the server first, then in the file.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077
mkdir -p secrets
chmod 700 secrets
for name in db_password redis_password; do
  if [ -s "secrets/$name" ]; then
    echo "secrets/$name exists: kept"
    continue
  fi
  head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "secrets/$name"
  chmod 644 "secrets/$name"
  echo "secrets/$name: made"
done
