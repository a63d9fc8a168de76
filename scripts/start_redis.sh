#!/usr/bin/env bash
# Install (if needed) and start a local Redis server for the Celery tests, then print its URL.
# Idempotent; needs root (as in CI). Usage: export STOREMON_TEST_REDIS_URL=$(scripts/start_redis.sh)
# Nothing is persisted (no RDB snapshots, no append-only file): it is a broker for tests.
set -euo pipefail
port="${REDIS_PORT:-6379}"
if ! command -v redis-server >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
fi
if ! redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --save "" --appendonly no \
    --logfile /tmp/storemon-redis-"$port".log >&2
fi
for _ in $(seq 1 30); do
  redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
  sleep 0.5
done
redis-cli -p "$port" ping | grep -q PONG
echo "redis://127.0.0.1:${port}/0"
