#!/usr/bin/env bash
# Install (if needed) and start a local PostgreSQL server for the tests, then print its URL.
# Idempotent; needs root (as in CI). Usage: export STOREMON_TEST_POSTGRES_URL=$(scripts/start_postgres.sh)
set -euo pipefail
if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null)" ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
if [ -z "$(pg_lsclusters -h)" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  pg_createcluster "$version" main >&2
fi
read -r version cluster port status _ <<<"$(pg_lsclusters -h | head -n 1)"
if [ "$status" != "online" ]; then
  pg_ctlcluster "$version" "$cluster" start >&2
fi
for _ in $(seq 1 30); do
  su postgres -c "psql -p $port -tAc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -p $port -tAc \"select 1 from pg_roles where rolname='storemon'\"" | grep -q 1 \
  || su postgres -c "psql -p $port -qc \"create role storemon login password 'storemon' createdb\"" >&2
su postgres -c "psql -p $port -tAc \"select 1 from pg_database where datname='storemon_test'\"" | grep -q 1 \
  || su postgres -c "createdb -p $port -O storemon storemon_test" >&2
echo "postgresql+psycopg2://storemon:storemon@127.0.0.1:${port}/storemon_test"
