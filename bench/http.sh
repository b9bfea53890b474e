#!/usr/bin/env bash
# W8: HTTP/1.1 hello world on loopback, quench.http against nginx 1.22 with
# libnginx-mod-http-lua (`worker_processes 1; content_by_lua_block {
# ngx.say("hello") }`: OpenResty on one core, the Lua anchor) and hyper 0.14
# on tokio's current-thread runtime (bench/peers/hyper, Debian's crates, the
# compiled anchor), side by side in one run:
#   1. keep-alive:  wrk -t1 -c64 -d${DURATION}s
#   2. Connection: close (a new connection per request), the same wrk
#   3. memory of ${IDLE_N} idle keep-alive connections (server RSS growth / N)
# The servers run side by side; 1 and 2 are measured in ${ROUNDS} rounds, each
# server once a round in an order that rotates, and each figure is the
# median of its rounds, printed with the range of the per-round ratios.
# Then ${PAIRED} paired rounds: quench and one peer served at once, each
# by its own wrk, for DURATION seconds (both servers on SERVER_CPU, both
# clients on CLIENT_CPU); their keep-alive CPU per request is compared
# within each round, and the median of those ratios printed: the steadiest
# figure on a shared machine (a slow spell falls on both alike).
# The server is pinned to CPU ${SERVER_CPU}, the client to ${CLIENT_CPU}
# (taskset). Besides requests per second (which the client may limit: wrk
# near 100 % of its core), each line gives the server's CPU time per request
# (user + system, from /proc), the figure that does not depend on the client.
#
#   bash bench/http.sh                 # DURATION=10 IDLE_N=10000 ROUNDS=3
#   DURATION=5 IDLE_N=2000 ROUNDS=5 bash bench/http.sh
#   RAW=1 bash bench/http.sh           # also every round's figures
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
ROUNDS=${ROUNDS:-3}
PAIRED=${PAIRED:-5}
RAW=${RAW:-0}
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
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }   # user, system
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
wait_port() {
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $1)).close()" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench/http.sh: nothing listens on port $1" >&2
  exit 1
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# wrk against url, measuring server pid: "rps us_per_request user_us_per_request errors"
# (CPU time: user + system, then user alone, from /proc)
measure() {
  local pid=$1 url=$2 t0 t1 out req rps errs
  shift 2
  t0=$(cpu_ticks "$pid")
  out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c64 -d"${DURATION}s" "$@" "$url")
  t1=$(cpu_ticks "$pid")
  req=$(awk '/requests in/{print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  errs=$(grep -E "Socket errors|Non-2xx" <<<"$out" | tr -s ' ' | tr '\n' ' ' || true)
  echo "$rps $(awk -v a="$t0" -v b="$t1" -v r="$req" -v k="$(getconf CLK_TCK)" 'BEGIN {
    split(a, x, " "); split(b, y, " "); u = y[1] - x[1]; s = y[2] - x[2]
    printf "%.2f %.2f", (u + s) / k * 1e6 / r, u / k * 1e6 / r }') ${errs:-no-errors}"
}

# Two servers at once, each driven by its own wrk (both on CLIENT_CPU), in
# the same window: "rps_a us_a rps_b us_b". Whatever slows the machine
# down during the window slows both alike, so their ratio holds still where
# two runs one after the other differ by up to a third on a shared VM.
measure_pair() {
  local pa=$1 ua=$2 pb=$3 ub=$4 a0 a1 b0 b1 ta tb
  shift 4
  ta=$(mktemp) tb=$(mktemp)
  a0=$(cpu_ticks "$pa"); b0=$(cpu_ticks "$pb")
  taskset -c "$CLIENT_CPU" wrk -t1 -c64 -d"${DURATION}s" "$@" "$ua" >"$ta" &
  local wa=$!
  taskset -c "$CLIENT_CPU" wrk -t1 -c64 -d"${DURATION}s" "$@" "$ub" >"$tb" &
  wait "$wa" $!
  a1=$(cpu_ticks "$pa"); b1=$(cpu_ticks "$pb")
  awk -v a0="$a0" -v a1="$a1" -v b0="$b0" -v b1="$b1" -v k="$(getconf CLK_TCK)" \
      -v ra="$(awk '/requests in/{print $1}' "$ta")" -v rb="$(awk '/requests in/{print $1}' "$tb")" \
      -v da="$DURATION" 'BEGIN {
    split(a0, x, " "); split(a1, y, " "); ua = (y[1] - x[1] + y[2] - x[2]) / k * 1e6 / ra
    split(b0, x, " "); split(b1, y, " "); ub = (y[1] - x[1] + y[2] - x[2]) / k * 1e6 / rb
    printf "%.2f %.2f %.2f %.2f\n", ra / da, ua, rb / da, ub }'
  rm -f "$ta" "$tb"
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

# --- the servers, all started at once, each on its own port ----------------------
QPORT=$(free_port)
LUA_CPATH="$BUILD_DIR/?.so;;" taskset -c "$SERVER_CPU" lua5.4 bench/http_hello.lua "$QPORT" \
  >"$TMP/quench.out" 2>&1 &
QPID=$!
PIDS+=("$QPID")
wait_port "$QPORT"

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

SERVERS=(quench nginx-lua)
declare -A PID=([quench]=$QPID [nginx-lua]=$NPID) PORT=([quench]=$QPORT [nginx-lua]=$NPORT)
if [ "$HYPER" = 1 ]; then
  HPORT=$(free_port)
  taskset -c "$SERVER_CPU" "$HYPER_BIN" "$HPORT" >"$TMP/hyper.out" 2>&1 &
  HPID=$!
  PIDS+=("$HPID")
  wait_port "$HPORT"
  SERVERS+=(hyper)
  PID[hyper]=$HPID
  PORT[hyper]=$HPORT
fi

# --- ROUNDS rounds, interleaved: each round runs every server once per case,
# in an order rotated from round to round, so that a slow spell of the
# machine (a 2-vCPU VM shared with other jobs) falls on every server alike.
# Each figure printed is the median of its rounds; the per-round ratios'
# range is printed beside the ratio of the medians.
declare -A KA_RPS KA_US KA_USR KA_ERR CL_RPS CL_US CL_ERR
for srv in "${SERVERS[@]}"; do                    # warm-up: caches, the heap, the backlog
  DURATION=1 measure "${PID[$srv]}" "http://127.0.0.1:${PORT[$srv]}/" >/dev/null
done
n=${#SERVERS[@]}
for ((r = 0; r < ROUNDS; r++)); do
  for ((i = 0; i < n; i++)); do
    srv=${SERVERS[$(((i + r) % n))]}
    url="http://127.0.0.1:${PORT[$srv]}/"
    read -r rps us usr err <<<"$(measure "${PID[$srv]}" "$url")"
    KA_RPS[$srv]+="$rps "; KA_US[$srv]+="$us "; KA_USR[$srv]+="$usr "
    [ "$err" = no-errors ] || KA_ERR[$srv]+="$err "
    read -r rps us usr err <<<"$(measure "${PID[$srv]}" "$url" -H "Connection: close")"
    CL_RPS[$srv]+="$rps "; CL_US[$srv]+="$us "; [ "$err" = no-errors ] || CL_ERR[$srv]+="$err "
  done
done

# --- PAIRED rounds: quench and one peer at once (measure_pair), keep-alive
declare -A PAIR_CPU PAIR_RPS
for peer in "${SERVERS[@]:1}"; do
  for ((r = 0; r < PAIRED; r++)); do
    read -r qr qu pr pu <<<"$(measure_pair "$QPID" "http://127.0.0.1:$QPORT/" \
                                "${PID[$peer]}" "http://127.0.0.1:${PORT[$peer]}/")"
    PAIR_CPU[$peer]+="$(ratio "$pu" "$qu") "
    PAIR_RPS[$peer]+="$(ratio "$qr" "$pr") "
  done
done

declare -A MEM
for srv in "${SERVERS[@]}"; do MEM[$srv]=$(idle_memory "${PID[$srv]}" "${PORT[$srv]}"); done
kill -TERM "$QPID"
wait "$QPID" || true
kill -QUIT "$NMASTER"
wait "$NMASTER" || true
if [ "$HYPER" = 1 ]; then
  kill -TERM "$HPID"
  wait "$HPID" || true
fi

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END {
  if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# "min-max" of the per-round ratios of two lists: a/b, or b/a when inv=1
spread() {
  paste -d' ' <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) |
    awk -v inv="$3" '{ r = inv ? $2 / $1 : $1 / $2
      if (NR == 1 || r < lo) lo = r; if (NR == 1 || r > hi) hi = r }
      END { printf "%.2f-%.2f", lo, hi }'
}
for srv in "${SERVERS[@]}"; do
  echo "workload=W8 case=keepalive server=$srv rps=$(median "${KA_RPS[$srv]}")" \
       "us_per_req=$(median "${KA_US[$srv]}") user_us_per_req=$(median "${KA_USR[$srv]}")" \
       "${KA_ERR[$srv]:-no-errors}"
  echo "workload=W8 case=close server=$srv rps=$(median "${CL_RPS[$srv]}")" \
       "us_per_req=$(median "${CL_US[$srv]}") ${CL_ERR[$srv]:-no-errors}"
  echo "workload=W8 case=idle server=$srv bytes_per_conn=${MEM[$srv]}"
done
if [ "$RAW" = 1 ]; then
  for srv in "${SERVERS[@]}"; do
    echo "rounds $srv: keepalive rps ${KA_RPS[$srv]}us ${KA_US[$srv]}user us ${KA_USR[$srv]}" \
         "close rps ${CL_RPS[$srv]}us ${CL_US[$srv]}"
  done
fi
for peer in "${SERVERS[@]:1}"; do
  q=quench
  echo "ratios quench/$peer, medians of $ROUNDS rounds (>1: quench better; per-round range):" \
       "keepalive rps $(ratio "$(median "${KA_RPS[$q]}")" "$(median "${KA_RPS[$peer]}")")" \
       "($(spread "${KA_RPS[$q]}" "${KA_RPS[$peer]}" 0))," \
       "keepalive cpu/req $(ratio "$(median "${KA_US[$peer]}")" "$(median "${KA_US[$q]}")")" \
       "($(spread "${KA_US[$q]}" "${KA_US[$peer]}" 1))," \
       "keepalive user cpu/req $(ratio "$(median "${KA_USR[$peer]}")" "$(median "${KA_USR[$q]}")")" \
       "($(spread "${KA_USR[$q]}" "${KA_USR[$peer]}" 1))," \
       "close rps $(ratio "$(median "${CL_RPS[$q]}")" "$(median "${CL_RPS[$peer]}")")" \
       "($(spread "${CL_RPS[$q]}" "${CL_RPS[$peer]}" 0))," \
       "close cpu/req $(ratio "$(median "${CL_US[$peer]}")" "$(median "${CL_US[$q]}")")" \
       "($(spread "${CL_US[$q]}" "${CL_US[$peer]}" 1))," \
       "idle memory $(ratio "${MEM[$peer]}" "${MEM[$q]}")"
  if [ "$PAIRED" -gt 0 ]; then
    echo "paired with $peer, keep-alive, both at once, $PAIRED rounds (>1: quench better):" \
         "cpu/req $(median "${PAIR_CPU[$peer]}") (rounds: ${PAIR_CPU[$peer]% })," \
         "rps $(median "${PAIR_RPS[$peer]}") (rounds: ${PAIR_RPS[$peer]% })"
  fi
done
