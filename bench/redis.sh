#!/usr/bin/env bash
# GET/SET round trips per second, one connection, one command at a time,
# against one redis-server, in one run:
#   - redis-benchmark -c 1 -P 1 -t get,set   (C, the floor for one connection)
#   - the unmodified resty.redis on quench.ngx   (bench/redis_resty.lua)
#   - the same resty.redis under nginx + libnginx-mod-http-lua (OpenResty's
#     cosocket), in a content_by_lua_block loop; nginx runs in the
#     foreground (no daemon, no master) from a temporary directory
# and the same GET loop with a connect + set_keepalive around every command
# (the pool's path) on quench and on nginx.
#   bash bench/redis.sh                 # N=100000 commands a loop, RUNS=3
#   N=20000 RUNS=1 bash bench/redis.sh
#   RAW=1 bash bench/redis.sh           # also every run's rates, on stderr
# CPU placement, the same for every client: redis-server is pinned to CPU
# REDIS_CPU (default 1) and each client (redis-benchmark, the quench
# process, the nginx worker, and curl that starts its loop) to CLIENT_CPU
# (default 0), with taskset, as bench/http.sh pins its server and client.
# Unpinned, the scheduler places each client anew (a fresh quench process
# each run, one long-lived nginx worker), and on a 2-vCPU VM whether a
# client shares redis-server's CPU or wakes it on the other moves a rate by
# a third (docs/performance.md); REDIS_CPU=0 CLIENT_CPU=0 puts all on one
# CPU, PIN=0 leaves placement to the scheduler (the script before
# 2026-12-06). The clients take turns in each run, in an order that rotates
# from run to run, so none always runs first or last.
# Prints a Markdown table: each rate (the median of RUNS) and quench's
# ratio to the others. Needs redis-server, redis-tools, nginx-extras (with
# libnginx-mod-http-lua), lua-nginx-redis, curl: scripts/deps.sh installs
# them. Servers are stopped by PID at exit.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$REPO/build}
N=${N:-100000}
RUNS=${RUNS:-3}
PIN=${PIN:-1}
REDIS_CPU=${REDIS_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
if [ "$PIN" = 1 ]; then
  command -v taskset >/dev/null || { echo "redis.sh: taskset is missing (util-linux)" >&2; exit 1; }
  ON_REDIS=(taskset -c "$REDIS_CPU")
  ON_CLIENT=(taskset -c "$CLIENT_CPU")
else
  ON_REDIS=()
  ON_CLIENT=()
fi
for b in redis-server redis-benchmark nginx curl lua5.4; do
  command -v "$b" >/dev/null || { echo "redis.sh: $b is missing (scripts/deps.sh installs it)" >&2; exit 1; }
done
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] ||
  { echo "redis.sh: libnginx-mod-http-lua is missing" >&2; exit 1; }
[ -f "$BUILD_DIR/quench.so" ] || { echo "redis.sh: build quench first ($BUILD_DIR)" >&2; exit 1; }

export LUA_CPATH="$BUILD_DIR/?.so;;" LUA_PATH="$REPO/lua/?.lua;;"
TMP=$(mktemp -d /tmp/quench-redis-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
  lua5.4 -e 'local q = require "quench"
    print(q.run(function() local s = assert(q.tcp.listen("127.0.0.1", 0))
      local _, p = s:getsockname(); s:close(); return p end))'
}
wait_port() {   # wait_port PORT: until something accepts on 127.0.0.1:PORT
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "redis.sh: nothing listens on port $1" >&2; exit 1
}

RPORT=$(free_port)
"${ON_REDIS[@]}" redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --loglevel warning >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
wait_port "$RPORT"

NPORT=$(free_port)
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes 1;
daemon off;
master_process off;
error_log $TMP/nginx/error.log warn;
pid $TMP/nginx/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  lua_package_path "/usr/share/lua/5.1/?.lua;;";
  server {
    listen 127.0.0.1:$NPORT;
    location /bench {
      content_by_lua_block {
        local redis = require "nginx.redis"    -- Debian's lua-nginx-redis, as quench loads it
        local n = tonumber(ngx.var.arg_n)
        local red = redis:new()
        red:set_timeout(5000)
        assert(red:connect("127.0.0.1", $RPORT))
        assert(red:set("bench:key", "xxx"))
        local function timed(name, fn)
          collectgarbage()
          ngx.update_time()
          local t0, c0 = ngx.now(), os.clock()
          for _ = 1, n do fn() end
          ngx.update_time()
          ngx.say(string.format("openresty %s %.0f %.2f", name, n / (ngx.now() - t0),
                                (os.clock() - c0) / n * 1e6))
        end
        timed("SET", function() assert(red:set("bench:key", "xxx")) end)
        timed("GET", function() assert(red:get("bench:key")) end)
        red:set_keepalive()
        timed("GET+pool", function()
          local r = redis:new()
          r:set_timeout(5000)
          assert(r:connect("127.0.0.1", $RPORT))
          assert(r:get("bench:key"))
          r:set_keepalive(60000, 10)
        end)
      }
    }
  }
}
EOF
"${ON_CLIENT[@]}" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" &
PIDS+=($!)
wait_port "$NPORT"

run_redis_benchmark() {
  "${ON_CLIENT[@]}" redis-benchmark -h 127.0.0.1 -p "$RPORT" -c 1 -P 1 -n "$N" -t set,get --csv |
    awk -F'"' '$2 == "SET" || $2 == "GET" { printf "redis-benchmark %s %.0f\n", $2, $4 }' >>"$TMP/results"
}
run_quench() {
  "${ON_CLIENT[@]}" lua5.4 "$REPO/bench/redis_resty.lua" "$RPORT" "$N" >>"$TMP/results"
}
run_openresty() {
  "${ON_CLIENT[@]}" curl -sf "http://127.0.0.1:$NPORT/bench?n=$N" >>"$TMP/results" ||
    { echo "redis.sh: the nginx loop failed:" >&2; cat "$TMP/nginx/error.log" >&2; exit 1; }
}
CLIENTS=(run_redis_benchmark run_quench run_openresty)

: >"$TMP/results"
for run in $(seq 1 "$RUNS"); do
  echo "run $run/$RUNS" >&2
  for i in 0 1 2; do   # run 1: redis-benchmark, quench, OpenResty; run 2 starts with quench...
    "${CLIENTS[$(( (run - 1 + i) % 3 ))]}"
  done
done

[ "${RAW:-0}" = 1 ] && cat "$TMP/results" >&2   # RAW=1: every run's lines, on stderr

lua5.4 - "$TMP/results" "$N" "$RUNS" <<'EOF'
local path, n, runs = arg[1], arg[2], arg[3]
local rates, cpus = {}, {}
for line in io.lines(path) do
  local who, what, rate, cpu = line:match("^(%S+) (%S+) (%d+) ?([%d%.]*)$")
  if who then
    local k = who .. " " .. what
    rates[k] = rates[k] or {}
    table.insert(rates[k], tonumber(rate))
    if cpu ~= "" then
      cpus[k] = cpus[k] or {}
      table.insert(cpus[k], tonumber(cpu))
    end
  end
end
local function median(k, from)
  local t = (from or rates)[k]
  if not t then return nil end
  table.sort(t)
  return t[(#t + 1) // 2]
end
print(("resty.redis round trips per second, one connection, N = %s, median of %s run(s)"):format(n, runs))
print()
print("| command | redis-benchmark -c 1 -P 1 | OpenResty (nginx + ngx_lua) | quench.ngx | quench / redis-benchmark | quench / OpenResty |")
print("|---|---|---|---|---|---|")
for _, what in ipairs({ "SET", "GET", "GET+pool" }) do
  local rb, or_, q = median("redis-benchmark " .. what), median("openresty " .. what), median("quench " .. what)
  local function f(x) return x and ("%d"):format(x) or "-" end
  local function r(a, b) return (a and b) and ("%.2f"):format(a / b) or "-" end
  print(("| %s | %s | %s | %s | %s | %s |"):format(what, f(rb), f(or_), f(q), r(q, rb), r(q, or_)))
end
print()
print("CPU time of the client process per command (user + system, µs; median):")
print()
print("| command | OpenResty | quench.ngx | quench / OpenResty |")
print("|---|---|---|---|")
for _, what in ipairs({ "SET", "GET", "GET+pool" }) do
  local o, q = median("openresty " .. what, cpus), median("quench " .. what, cpus)
  print(("| %s | %s | %s | %s |"):format(what, o and ("%.1f"):format(o) or "-",
        q and ("%.1f"):format(q) or "-", (o and q) and ("%.2f"):format(q / o) or "-"))
end
EOF
