#!/usr/bin/env bash
# Run quench's workloads (bench/workloads.lua: W1..W7 of docs/design.md §7, plus W7s)
# and, in the same invocation, the same workloads on the peers available here
# (../shared/bench-peers: baseline, cqueues, luv, copas, tokio-ct, tokio-mt),
# then print each workload's value per peer and quench's ratio to each peer.
#
#   bash bench/run.sh                           # everything, 1 pass
#   RUNS=3 bash bench/run.sh                    # 3 passes; the tables show medians
#   WORKLOADS="W1 W4 W7s" PEERS="quench luv tokio-ct" bash bench/run.sh
#   W1_N=10000 W7S_N=10000 bash bench/run.sh    # sizes: any W*_ variable (README)
#
# Environment:
#   BUILD_DIR     where quench.so is built (default: build/). Configured in
#                 Release unless it already is, then `cmake --build --target
#                 quench` (a no-op when up to date).
#   QUENCH_BUILD=0  never build quench (use BUILD_DIR/quench.so as it is)
#   BENCH_PEERS   the bench-peers directory (default: ../shared/bench-peers
#                 next to the repository); absent = quench alone
#   SETUP=0       do not install missing peer packages (otherwise, as root,
#                 bench-peers/setup.sh runs: apt-get update, apt-get install)
#   TOKIO=0       do not build or run the tokio peers (cargo, offline, ~1 min)
#   PEERS, WORKLOADS  space-separated filters (default: all available, all)
#   RUNS (1), TIMEOUT_S per process (300), OUT (output dir, default
#   BUILD_DIR/bench/<date-time>)
#
# Each (workload, peer) runs in its own process under
# `/usr/bin/time -v timeout -k 5 $TIMEOUT_S CMD Wn`, as bench-peers/run.sh does.
# OUT gets results.txt (one line per run), summary.md (the tables), env.txt,
# and each program's output (*.out) and `time -v` report (*.time); the
# summary's last table is each process's CPU time, user + system (where the
# time goes: the kernel's share is the same for every peer on W6).
set -u
set -f   # commands from the conf files are word-split; no globbing (LUA_CPATH has '?')

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=$(realpath -m "${BUILD_DIR:-$REPO/build}")
PEERS_DIR=${BENCH_PEERS:-$REPO/../shared/bench-peers}
[ -d "$PEERS_DIR" ] && PEERS_DIR=$(cd "$PEERS_DIR" && pwd)
RUNS=${RUNS:-1}
TIMEOUT_S=${TIMEOUT_S:-300}
ALL_WORKLOADS="W1 W2 W3 W4 W5 W6 W7 W7s"
OUT=$(realpath -m "${OUT:-$BUILD_DIR/bench/$(date +%Y%m%d-%H%M%S)}")
JOBS=$(nproc 2>/dev/null || echo 2)
CARGO=${CARGO:-$(command -v cargo || echo "$HOME/.cargo/bin/cargo")}
export W1_N W2_N W3_N W3_MAX_MS W3_SEED W4_N W4_SLEEP_S W5_N W5_TIMEOUT_S \
       W6_CLIENTS W6_ROUNDS W6_SIZE W7_N W7S_N W7S_SLEEP_S 2>/dev/null

log() { echo "[bench] $*" >&2; }
mkdir -p "$OUT"

# ------------------------------------------------------------ build quench
# Configure when BUILD_DIR is not a Release build yet; then `cmake --build`
# the module (incremental: a no-op when it is up to date).
if [ "${QUENCH_BUILD:-1}" != 0 ]; then
  configure=0
  grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || configure=1
  [ "$configure" = 1 ] && log "configuring $BUILD_DIR (Release)"
  if ! ( { [ "$configure" = 0 ] || cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release; } &&
         cmake --build "$BUILD_DIR" --target quench -j "$JOBS" ) >"$OUT/quench-build.log" 2>&1; then
    log "quench build FAILED, see $OUT/quench-build.log"
    tail -n 20 "$OUT/quench-build.log" >&2
    exit 1
  fi
fi
[ -f "$BUILD_DIR/quench.so" ] || { log "no $BUILD_DIR/quench.so"; exit 1; }

# ------------------------------------------------------------ peers: set up, build
HAVE_PEERS=0
[ -f "$PEERS_DIR/peers.conf" ] && HAVE_PEERS=1
[ "$HAVE_PEERS" = 1 ] || log "no bench-peers at $PEERS_DIR: quench alone"

TOKIO_OK=0
if [ "$HAVE_PEERS" = 1 ]; then
  if [ "${SETUP:-1}" != 0 ]; then
    missing=
    for p in lua-cqueues lua-luv lua-copas lua-socket lua-coxpcall librust-tokio-dev time; do
      dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
      if [ "$(id -u)" = 0 ]; then
        log "installing peer packages with apt-get:$missing"
        bash "$PEERS_DIR/setup.sh" >"$OUT/setup.log" 2>&1 || log "setup.sh failed, see $OUT/setup.log"
      else
        log "missing peer packages:$missing (run as root, or: sudo bash $PEERS_DIR/setup.sh)"
      fi
    fi
  fi
  case " ${PEERS:-tokio} " in *\ tokio*) ;; *) TOKIO=0 ;; esac   # not wanted: not built
  if [ "${TOKIO:-1}" != 0 ] && [ -x "$CARGO" ]; then
    log "building the tokio peers (cargo --offline, Debian crate registry)"
    if (cd "$PEERS_DIR/tokio" && CARGO_HOME="$PEERS_DIR/tokio/cargo-home" \
          "$CARGO" build --release --offline) >"$OUT/tokio-build.log" 2>&1 &&
       (cd "$REPO/bench/peers/tokio-w7s" && CARGO_HOME="$PEERS_DIR/tokio/cargo-home" \
          CARGO_TARGET_DIR="$BUILD_DIR/bench/cargo-target" \
          "$CARGO" build --release --offline) >>"$OUT/tokio-build.log" 2>&1; then
      TOKIO_OK=1
    else
      log "tokio build FAILED (see $OUT/tokio-build.log): tokio peers skipped"
    fi
  elif [ "${TOKIO:-1}" != 0 ]; then
    log "cargo not found: tokio peers skipped"
  fi
fi

# ------------------------------------------------------------ the peer table
declare -a P_NAME P_WL P_CMD P_DIR
expand() {   # fill in the placeholders of bench/*.conf
  sed -e "s|@REPO@|$REPO|g" -e "s|@BUILD@|$BUILD_DIR|g" "$1"
}
read_conf() {   # FILE DIR: NAME | WORKLOADS | COMMAND lines, run with cwd DIR
  local name wl cmd
  while IFS='|' read -r name wl cmd; do
    name=$(echo "$name" | xargs); wl=$(echo "$wl" | xargs); cmd=$(echo "$cmd" | xargs)
    case "$name" in ''|\#*) continue;; esac
    P_NAME+=("$name"); P_WL+=("$wl"); P_CMD+=("$cmd"); P_DIR+=("$2")
  done < "$1"
}
expand "$REPO/bench/quench.conf" > "$OUT/quench.conf"
expand "$REPO/bench/peers.conf" > "$OUT/peers-w7s.conf"
read_conf "$OUT/quench.conf" "$REPO"
if [ "$HAVE_PEERS" = 1 ]; then
  # bench-peers/peers.conf may list quench itself (its reference driver): we run ours
  grep -v '^[[:space:]]*quench[[:space:]]*|' "$PEERS_DIR/peers.conf" > "$OUT/peers.conf"
  read_conf "$OUT/peers.conf" "$PEERS_DIR"
  read_conf "$OUT/peers-w7s.conf" "$PEERS_DIR"
fi

declare -A AVAIL
available() {   # NAME: can this peer run here?
  local v
  if [ -z "${AVAIL[$1]+x}" ]; then
    case "$1" in
      quench) v=1 ;;
      tokio-*) v=$TOKIO_OK ;;
      baseline) lua5.4 -e 'require "socket.core"' 2>/dev/null && v=1 || v=0 ;;
      luv|cqueues) lua5.4 -e "require 'socket.core'; require '$1'" 2>/dev/null && v=1 || v=0 ;;
      copas) lua5.4 -e "package.path = package.path .. ';/usr/share/lua/5.1/?.lua'
                        require 'socket'; require 'copas'" 2>/dev/null && v=1 || v=0 ;;
      *) v=1 ;;
    esac
    AVAIL[$1]=$v
    [ "$v" = 1 ] || log "peer $1 is not available here: skipped"
  fi
  [ "${AVAIL[$1]}" = 1 ]
}
wanted() {   # LIST ITEM (an empty list wants everything; case-insensitive)
  [ -z "$1" ] && return 0
  local x
  for x in $1; do [ "${x,,}" = "${2,,}" ] && return 0; done
  return 1
}

# ------------------------------------------------------------ environment record
{
  echo "date: $(date -Is)"
  echo "host: $(uname -srm), $JOBS cpus,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "loadavg: $(cat /proc/loadavg)"
  echo "quench: $BUILD_DIR/quench.so ($(date -r "$BUILD_DIR/quench.so" -Is));" \
       "repository at $(cd "$REPO" && git describe --always --dirty 2>/dev/null)"
  lua5.4 -v 2>&1
  dpkg-query -W -f='${Package} ${Version}\n' lua-cqueues lua-luv lua-copas lua-socket \
    librust-tokio-dev 2>/dev/null
  echo "sizes: W1_N=${W1_N:-100000} W2_N=${W2_N:-1000000} W3_N=${W3_N:-100000}" \
       "W4_N=${W4_N:-100000} W5_N=${W5_N:-1000000}" \
       "W6=${W6_CLIENTS:-100}x${W6_ROUNDS:-1000}x${W6_SIZE:-64}B W7_N=${W7_N:-100000}" \
       "W7S_N=${W7S_N:-100000}"
} > "$OUT/env.txt"
cat "$OUT/env.txt" >&2

# ------------------------------------------------------------ run
RESULTS=$OUT/results.txt
: > "$RESULTS"
for run in $(seq 1 "$RUNS"); do
  for w in $ALL_WORKLOADS; do   # workload-major: one workload's peers run back to back
    wanted "${WORKLOADS:-}" "$w" || continue
    for i in "${!P_NAME[@]}"; do
      name=${P_NAME[$i]}
      wanted "${PEERS:-}" "$name" || continue
      wanted "${P_WL[$i]}" "$w" || continue
      available "$name" || continue
      base="$OUT/run$run.$name.$w"
      log "run $run  $w  $name"
      (cd "${P_DIR[$i]}" && exec /usr/bin/time -v -o "$base.time" \
         timeout -k 5 "$TIMEOUT_S" ${P_CMD[$i]} "$w") > "$base.out" 2>&1
      rc=$?
      line=$(grep '^peer=' "$base.out" | tail -n 1)
      rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$base.time" 2>/dev/null)
      wall=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$base.time" 2>/dev/null)
      usr=$(awk -F: '/User time \(seconds\)/ {gsub(/ /, "", $2); print $2}' "$base.time" 2>/dev/null)
      sys=$(awk -F: '/System time \(seconds\)/ {gsub(/ /, "", $2); print $2}' "$base.time" 2>/dev/null)
      if [ -z "$line" ]; then
        why=ERROR
        { [ "$rc" = 124 ] || [ "$rc" = 137 ]; } && why=TIMEOUT
        line="peer=$name workload=$w value=NA unit=- check=$why"
        log "  $why (rc=$rc), see $base.out"
      fi
      echo "run=$run $line peak_rss_kb=${rss:-NA} proc_wall=${wall:-NA} user_s=${usr:-NA} sys_s=${sys:-NA} rc=$rc" | tee -a "$RESULTS" >&2
    done
  done
done

lua5.4 "$REPO/bench/report.lua" "$RESULTS" > "$OUT/summary.md"
echo
cat "$OUT/summary.md"
echo
echo "results: $RESULTS (raw outputs in $OUT)"
