#!/usr/bin/env bash
# W8: HTTP/1.1 hello world on loopback, quench.http against nginx 1.22 with
# libnginx-mod-http-lua (`worker_processes 1; content_by_lua_block {
# ngx.say("hello") }`: OpenResty on one core, the Lua anchor) and hyper 0.14
# on tokio's current-thread runtime (bench/peers/hyper, Debian's crates, the
# compiled anchor), side by side in one run:
#   1. keep-alive:  wrk -t1 -c64 -d${DURATION}s
#   2. Connection: close (a new connection per request), the same wrk
#   3. memory of ${IDLE_N} idle keep-alive connections (server RSS growth / N)
# The server is pinned to CPU ${SERVER_CPU}, the client to ${CLIENT_CPU}
# (taskset). Besides requests per second (which the client may limit: wrk
# near 100 % of its core), each line gives the server's CPU time per request
# (user + system, from /proc), the figure that does not depend on the client.
#
#   bash bench/http.sh                 # DURATION=10 IDLE_N=10000
#   DURATION=5 IDLE_N=2000 bash bench/http.sh
#   HYPER=0 bash bench/http.sh         # without the hyper peer (no cargo)
#
# Needs (Debian): wrk, nginx-core or nginx-light + libnginx-mod-http-lua,
# python3; quench built in BUILD_DIR (default build/); for hyper, cargo and
# librust-hyper-dev + librust-tokio-dev (built offline into
# $BUILD_DIR/bench/cargo-target, ~1 min on an idle machine). Servers listen
# on free loopback ports and are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DURATION=${DURATION:-10}
IDLE_N=${IDLE_N:-10000}
HYPER=${HYPER:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

for tool in wrk nginx python3 taskset; do
  command -v "$tool" >/dev/null || { echo "bench/http.sh: $tool is missing" >&2; exit 1; }
done
LUA_MOD=/usr/lib/nginx/modules/ngx_http_lua_module.so
NDK_MOD=/usr/lib/nginx/modules/ndk_http_module.so
[ -f "$LUA_MOD" ] || { echo "bench/http.sh: libnginx-mod-http-lua is missing" >&2; exit 1; }

if [ "$HYPER" = 1 ]; then
  CARGO=${CARGO:-$(command -v cargo || echo "$HOME/.cargo/bin/cargo")}
  [ -x "$CARGO" ] || { echo "bench/http.sh: cargo is missing (HYPER=0 to skip hyper)" >&2; exit 1; }
  compgen -G "/usr/share/cargo/registry/hyper-0.14*" >/dev/null ||
    { echo "bench/http.sh: librust-hyper-dev is missing (HYPER=0 to skip hyper)" >&2; exit 1; }
  CARGO_HOME_DIR="$TMP/cargo-home"
  mkdir -p "$CARGO_HOME_DIR"
  # Debian's packaged crates replace crates.io; nothing is downloaded
  printf '%s\n' '[source.crates-io]' 'replace-with = "debian-packages"' \
    '[source.debian-packages]' 'directory = "/usr/share/cargo/registry"' \
    '[net]' 'offline = true' >"$CARGO_HOME_DIR/config.toml"
  HYPER_TARGET=${HYPER_TARGET:-$(realpath -m "$BUILD_DIR/bench/cargo-target")}
  (cd bench/peers/hyper && CARGO_HOME="$CARGO_HOME_DIR" CARGO_TARGET_DIR="$HYPER_TARGET" \
     "$CARGO" build --release --offline --quiet) ||
    { echo "bench/http.sh: building bench/peers/hyper failed" >&2; exit 1; }
  HYPER_BIN="$HYPER_TARGET/release/bench-hyper-w8"
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
wait_port() {
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $1)).close()" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench/http.sh: nothing listens on port $1" >&2
  exit 1
}

# wrk against url, measuring server pid: "rps us_per_request errors"
measure() {
  local pid=$1 url=$2 t0 t1 out req rps errs
  shift 2
  t0=$(cpu_ticks "$pid")
  out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c64 -d"${DURATION}s" "$@" "$url")
  t1=$(cpu_ticks "$pid")
  req=$(awk '/requests in/{print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  errs=$(grep -E "Socket errors|Non-2xx" <<<"$out" | tr -s ' ' | tr '\n' ' ' || true)
  echo "$rps $(awk -v t=$((t1 - t0)) -v r="$req" -v k="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.2f", t / k * 1e6 / r }') ${errs:-no-errors}"
}

# RSS growth of pid per idle keep-alive connection, in bytes
idle_memory() {
  local pid=$1 port=$2 before after
  before=$(rss_kb "$pid")
  coproc IDLE { taskset -c "$CLIENT_CPU" python3 bench/http_idle.py "$port" "$IDLE_N"; }
  local line
  read -r line <&"${IDLE[0]}"
  [ "$line" = "open $IDLE_N" ] || { echo "bench/http.sh: idle client: $line" >&2; exit 1; }
  after=$(rss_kb "$pid")
  echo done >&"${IDLE[1]}"
  wait "$IDLE_PID" || true
  echo $(( (after - before) * 1024 / IDLE_N ))
}

# --- quench ---------------------------------------------------------------------
QPORT=$(free_port)
LUA_CPATH="$BUILD_DIR/?.so;;" taskset -c "$SERVER_CPU" lua5.4 bench/http_hello.lua "$QPORT" \
  >"$TMP/quench.out" 2>&1 &
QPID=$!
PIDS+=("$QPID")
wait_port "$QPORT"
read -r q_rps q_us q_err <<<"$(measure "$QPID" "http://127.0.0.1:$QPORT/")"
read -r qc_rps qc_us qc_err <<<"$(measure "$QPID" "http://127.0.0.1:$QPORT/" -H "Connection: close")"
q_mem=$(idle_memory "$QPID" "$QPORT")
kill -TERM "$QPID"
wait "$QPID" || true

# --- nginx + lua ------------------------------------------------------------------
NPORT=$(free_port)
cat >"$TMP/nginx.conf" <<EOF
load_module $NDK_MOD;
load_module $LUA_MOD;
worker_processes 1;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/error.log;
events { worker_connections $((IDLE_N + 1000)); }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path $TMP;
  server {
    listen 127.0.0.1:$NPORT;
    location / { content_by_lua_block { ngx.say("hello") } }
  }
}
EOF
taskset -c "$SERVER_CPU" nginx -c "$TMP/nginx.conf" -p "$TMP" >"$TMP/nginx.out" 2>&1 &
NMASTER=$!
PIDS+=("$NMASTER")
wait_port "$NPORT"
NPID=$(pgrep -P "$NMASTER" | head -n1)             # the worker
read -r n_rps n_us n_err <<<"$(measure "$NPID" "http://127.0.0.1:$NPORT/")"
read -r nc_rps nc_us nc_err <<<"$(measure "$NPID" "http://127.0.0.1:$NPORT/" -H "Connection: close")"
n_mem=$(idle_memory "$NPID" "$NPORT")
kill -QUIT "$NMASTER"
wait "$NMASTER" || true

# --- hyper (tokio current-thread) --------------------------------------------------
if [ "$HYPER" = 1 ]; then
  HPORT=$(free_port)
  taskset -c "$SERVER_CPU" "$HYPER_BIN" "$HPORT" >"$TMP/hyper.out" 2>&1 &
  HPID=$!
  PIDS+=("$HPID")
  wait_port "$HPORT"
  read -r h_rps h_us h_err <<<"$(measure "$HPID" "http://127.0.0.1:$HPORT/")"
  read -r hc_rps hc_us hc_err <<<"$(measure "$HPID" "http://127.0.0.1:$HPORT/" -H "Connection: close")"
  h_mem=$(idle_memory "$HPID" "$HPORT")
  kill -TERM "$HPID"
  wait "$HPID" || true
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "workload=W8 case=keepalive server=quench rps=$q_rps us_per_req=$q_us $q_err"
echo "workload=W8 case=keepalive server=nginx-lua rps=$n_rps us_per_req=$n_us $n_err"
echo "workload=W8 case=close server=quench rps=$qc_rps us_per_req=$qc_us $qc_err"
echo "workload=W8 case=close server=nginx-lua rps=$nc_rps us_per_req=$nc_us $nc_err"
if [ "$HYPER" = 1 ]; then
  echo "workload=W8 case=keepalive server=hyper rps=$h_rps us_per_req=$h_us $h_err"
  echo "workload=W8 case=close server=hyper rps=$hc_rps us_per_req=$hc_us $hc_err"
  echo "workload=W8 case=idle server=hyper bytes_per_conn=$h_mem"
fi
echo "workload=W8 case=idle server=quench bytes_per_conn=$q_mem"
echo "workload=W8 case=idle server=nginx-lua bytes_per_conn=$n_mem"
echo "ratios quench/nginx-lua (>1: quench better): keepalive rps $(ratio "$q_rps" "$n_rps")," \
     "keepalive cpu/req $(ratio "$n_us" "$q_us"), close rps $(ratio "$qc_rps" "$nc_rps")," \
     "close cpu/req $(ratio "$nc_us" "$qc_us"), idle memory $(ratio "$n_mem" "$q_mem")"
if [ "$HYPER" = 1 ]; then
  echo "ratios quench/hyper (>1: quench better): keepalive rps $(ratio "$q_rps" "$h_rps")," \
       "keepalive cpu/req $(ratio "$h_us" "$q_us"), close rps $(ratio "$qc_rps" "$hc_rps")," \
       "close cpu/req $(ratio "$hc_us" "$qc_us"), idle memory $(ratio "$h_mem" "$q_mem")"
fi
