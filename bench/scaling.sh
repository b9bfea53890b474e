#!/usr/bin/env bash
# Scaling curves (issue 8, docs/performance.md): quench's cost per task as
# the number of tasks grows, and TCP echo as the number of connections grows.
#
#   bash bench/scaling.sh                       # W1 W3 W4 W7 at 10k/100k/1M, W6 at 10/100/1000
#   SIZES="10000 100000" CONNS="10 100" bash bench/scaling.sh
#   PEER_CPATH="..." is not used: this is quench alone (the ratios to peers are
#   bench/run.sh's job); every point runs in its own process.
#
# Prints one Markdown table per workload: size, the workload's value, and the
# cost per task: ns per task for W1 and W4 from the elapsed time, for W3 from
# the wall time beyond the longest sleep (W3_MAX_MS, 100 ms), bytes per task
# for W7; W6: round trips per second per connection count, each
# connection doing W6_ROUNDS (default 1000) round trips of 64 bytes.
# Needs build/quench.so (or BUILD_DIR); builds nothing.
set -eu

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=$(realpath -m "${BUILD_DIR:-$REPO/build}")
SIZES=${SIZES:-"10000 100000 1000000"}
CONNS=${CONNS:-"10 100 1000"}
LUA=${LUA:-lua5.4}
[ -f "$BUILD_DIR/quench.so" ] || { echo "no $BUILD_DIR/quench.so: build first" >&2; exit 1; }

run() {   # run WORKLOAD KEY=VALUE... -> the workload's result line
  LUA_CPATH="$BUILD_DIR/?.so;;" "$LUA" "$REPO/bench/workloads.lua" "$@"
}

field() {   # field NAME LINE
  printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# W1: tasks/s -> ns per task; W3, W4: ms -> ns per task; W7: bytes per task.
for w in W1 W3 W4 W7; do
  echo
  echo "| $w tasks | value | per task |"
  echo "|--:|--:|--:|"
  for n in $SIZES; do
    line=$(run "$w" "${w}_N=$n")
    v=$(field value "$line")
    unit=$(field unit "$line")
    check=$(field check "$line")
    case $w in
      W1) per=$(awk -v v="$v" 'BEGIN { printf "%.0f ns", 1e9 / v }') ;;
      W3) per=$(awk -v v="$v" -v n="$n" -v m="${W3_MAX_MS:-100}" \
                 'BEGIN { printf "%.0f ns", (v - m) * 1e6 / n }') ;;   # beyond the longest sleep
      W4) per=$(awk -v v="$v" -v n="$n" 'BEGIN { printf "%.0f ns", v * 1e6 / n }') ;;
      W7) per="$v B" ;;
    esac
    [ "$check" = ok ] || per="$per (check=$check)"
    echo "| $n | $v $unit | $per |"
  done
done

echo
echo "| W6 connections | round trips/s | per round trip |"
echo "|--:|--:|--:|"
for c in $CONNS; do
  line=$(run W6 "W6_CLIENTS=$c")
  v=$(field value "$line")
  check=$(field check "$line")
  per=$(awk -v v="$v" 'BEGIN { printf "%.1f us", 1e6 / v }')
  [ "$check" = ok ] || per="$per (check=$check)"
  echo "| $c | $v | $per |"
done
