#!/usr/bin/env bash
# Instructions per command of the unmodified resty.redis on quench.ngx
# (user space, deterministic, unlike a rate on a shared machine): callgrind
# runs bench/redis_resty.lua's loop of one command (SET, GET or GET+pool)
# at N1 and at N2 commands, and the difference over N2 - N1 cancels the
# start-up. One redis-server on a free loopback port, stopped by PID.
#   bash bench/redis_ir.sh            # GET, N1=1000 N2=4000
#   WHAT=GET+pool bash bench/redis_ir.sh
#   QUENCH_ARENA=0 bash bench/redis_ir.sh   # with glibc's malloc for Lua
# Needs valgrind, redis-server, lua-nginx-redis (scripts/deps.sh).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$REPO/build}
WHAT=${WHAT:-GET} N1=${N1:-1000} N2=${N2:-4000}
for b in redis-server valgrind lua5.4; do
  command -v "$b" >/dev/null || { echo "redis_ir.sh: $b is missing" >&2; exit 1; }
done
export LUA_CPATH="$BUILD_DIR/?.so;;" LUA_PATH="$REPO/lua/?.lua;;"
# The Lua state's small-block allocator (lua/arena.c), as in every run
# outside valgrind: it turns itself off under valgrind unless asked.
# QUENCH_ARENA=0 counts with glibc's malloc instead (the figures before
# 2026-12-06 07:30 in docs/performance.md were counted so).
export QUENCH_ARENA=${QUENCH_ARENA:-1}
PORT=$(lua5.4 -e 'local q = require "quench"
  print(q.run(function() local s = assert(q.tcp.listen("127.0.0.1", 0))
    local _, p = s:getsockname(); s:close(); return p end))')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --loglevel warning >/dev/null 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done
ir() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    lua5.4 "$REPO/bench/redis_resty.lua" "$PORT" "$1" "$WHAT" 2>&1 |
    awk '/refs:/ { gsub(",", "", $4); print $4 }'
}
a=$(ir "$N1"); b=$(ir "$N2")
echo "resty.redis $WHAT on quench.ngx: $(( (b - a) / (N2 - N1) )) instructions per command"
