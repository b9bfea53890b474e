#!/usr/bin/env bash
# Run every test of quench, from a clean clone, as root on Debian 12:
#   1. build/      (Release -O2): ctest, then busted on spec/
#   1b. valgrind memcheck of busted on the specs of VALGRIND_SPECS, against
#      build/ (one suite; the fuzz specs run with smaller budgets there)
#   2. luacheck on spec/ lua/ examples/ bench/
#   3. install: `luarocks make` of rocks/quench-scm-1.rockspec into a temporary
#      tree, then examples/demo.lua run by a plain lua5.4 with only that
#      tree's `luarocks path` set up (what a user does)
#   4. build-asan/ (QUENCH_SANITIZE=ON): ctest, then busted on spec/ with the
#      ASan+UBSan runtimes preloaded into the (uninstrumented) lua5.4
#   5. optional, only where clang is installed: build-fuzz/ (QUENCH_FUZZ=ON),
#      the libFuzzer harness core/test/fuzz_core.c run 20,000 times over a
#      copy of core/test/fuzz_corpus (about 10 s with the build)
# The last line printed is "N passed, N failed" summed over every suite; the
# exit status is nonzero if anything failed.
#   QUENCH_SKIP_ASAN=1   skip stage 4 (quick local runs)
#   QUENCH_SKIP_INSTALL=1  skip stage 3
#   QUENCH_SKIP_VALGRIND=1  skip stage 1b
#   QUENCH_SKIP_FUZZ=1   skip stage 5
#   QUENCH_BUSTED_TIMEOUT=600  seconds for one busted run (ctest: 300 per test)
#   QUENCH_NO_APT=1      do not apt-get missing packages
set -uo pipefail
exec </dev/null
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$PWD
LOGDIR=$ROOT/build/test-logs
JOBS=$(nproc 2>/dev/null || echo 2)

. scripts/deps.sh
quench_install_deps || { echo "0 passed, 1 failed"; exit 1; }

PASSED=0 FAILED=0 SKIPPED=0 PRELOAD=
WRAP=()          # a command lua5.4 runs under (valgrind), for run_busted
SUMMARY=()
record() {   # record SUITE PASSED FAILED [SKIPPED]
  PASSED=$((PASSED + $2)); FAILED=$((FAILED + $3)); SKIPPED=$((SKIPPED + ${4:-0}))
  SUMMARY+=("$(printf '%-22s %4d passed, %d failed%s' "$1" "$2" "$3" \
                 "$( [ "${4:-0}" -gt 0 ] && echo ", $4 skipped")")")
}
banner() { printf '\n=== %s ===\n' "$*"; }

# build DIR CMAKE-ARGS... : configure + build; records a failure if it breaks.
build() {
  local dir=$1; shift
  banner "build $dir"
  if cmake -S . -B "$dir" "$@" && cmake --build "$dir" -j "$JOBS"; then
    return 0
  fi
  record "build $dir" 0 1
  return 1
}

# run_ctest DIR
run_ctest() {
  local dir=$1 log out total nfail
  banner "ctest $dir"
  mkdir -p "$LOGDIR"; log=$LOGDIR/ctest-${dir//\//_}.log
  (cd "$dir" && ctest --output-on-failure -j "$JOBS" --timeout 300) 2>&1 | tee "$log"
  out=$(grep -E '[0-9]+ tests failed out of [0-9]+' "$log" | tail -n1)
  if [[ $out =~ ([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+) ]]; then
    nfail=${BASH_REMATCH[1]} total=${BASH_REMATCH[2]}
    record "ctest $dir" $((total - nfail)) "$nfail"
  elif grep -q 'No tests were found' "$log"; then
    record "ctest $dir" 0 0
  else
    record "ctest $dir" 0 1   # ctest itself broke
  fi
}

# run_busted NAME LOG [busted args...]; $PRELOAD, if set, is LD_PRELOADed
# into lua5.4 only (not into tee/grep, which LeakSanitizer would then check).
# Counts from busted's plainTerminal summary line
#   "N successes / N failures / N errors / N pending : T seconds";
# errors count as failures. (busted 2.1.1's TAP handler crashes on a spec
# that fails to load and its json handler prints nothing once a test fails.)
run_busted() {
  local name=$1 log=$2; shift 2
  banner "busted $name"
  # stdout line-buffered: a LeakSanitizer report at exit ends the process
  # with _exit, which would drop busted's buffered summary line.
  timeout -k 10 "${QUENCH_BUSTED_TIMEOUT:-600}" env ${PRELOAD:+LD_PRELOAD="$PRELOAD"} \
    "${WRAP[@]}" lua5.4 -e 'io.stdout:setvbuf("line")' /usr/bin/busted --ignore-lua \
    -o plainTerminal "$@" 2>"$log.stderr" | tee "$log"
  local rc=${PIPESTATUS[0]}
  [ -s "$log.stderr" ] && cat "$log.stderr" >&2
  local re='([0-9]+) success(es)? / ([0-9]+) failures? / ([0-9]+) errors? / ([0-9]+) pending'
  local line ok=0 bad=0 pend=0 why=""
  line=$(grep -E "$re" "$log" | tail -n1)
  if [[ $line =~ $re ]]; then
    ok=${BASH_REMATCH[1]} bad=$((BASH_REMATCH[3] + BASH_REMATCH[4])) pend=${BASH_REMATCH[5]}
  else
    why="no summary line (exit status $rc): crashed?"
    [ "$rc" -eq 124 ] && why="timed out after ${QUENCH_BUSTED_TIMEOUT:-600} s"
  fi
  # Under the sanitizers any report is a failure, even when the exit status
  # or the summary line was lost. Each of these problems counts once.
  if [ -n "$PRELOAD" ] && grep -Eq \
      'ERROR: (AddressSanitizer|LeakSanitizer)|: runtime error: |SUMMARY: UndefinedBehaviorSanitizer' \
      "$log.stderr"; then
    why="sanitizer report (see $log.stderr)"
    grep -q '<unknown module>' "$log.stderr" &&
      why+=$'\n  frames of quench.so unnamed: configure build-asan with -DQUENCH_ASAN_NODELETE=ON and rerun to read them'
  elif [ ${#WRAP[@]} -gt 0 ] && { [ "$rc" -eq 99 ] || grep -Eq '^==[0-9]+== [A-Z]' "$log.stderr"; }; then
    why="valgrind report (see $log.stderr)"
  elif [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && [ -z "$why" ]; then
    why="exit status $rc with no failing test"
  fi
  if [ -n "$why" ]; then
    echo "busted $name: $why" >&2
    bad=$((bad + 1))
  fi
  record "busted $name" "$ok" "$bad" "$pend"
}

have_specs() { [ -d spec ] && [ -n "$(find spec -name '*_spec.lua' -print -quit)" ]; }

# --- 1. normal build ---------------------------------------------------------
if build build -DCMAKE_BUILD_TYPE=Release -DQUENCH_SANITIZE=OFF; then
  run_ctest build
  if have_specs; then
    run_busted normal "$LOGDIR/busted-normal.log"
  fi
fi

# --- 1b. valgrind memcheck (normal build) ---------------------------------------
# A representative subset, explicit so that a slow new spec (real-time I/O)
# does not silently blow this stage's budget (~4 minutes at most; about 50 s
# on a 2-core machine in 2025). Definite leaks and memory errors fail it.
VALGRIND_SPECS=(tasks cancel cancel_safety cleanup select token channel sync structured run
                random_cancel api_fuzz limits http http_client pool ngx tls_cancel unix_dgram)
if [ "${QUENCH_SKIP_VALGRIND:-}" != 1 ] && [ -f build/quench.so ] && have_specs; then
  if command -v valgrind >/dev/null; then
    vspecs=()
    for s in "${VALGRIND_SPECS[@]}"; do
      [ -f "spec/${s}_spec.lua" ] && vspecs+=("spec/${s}_spec.lua")
    done
    # -q: only errors; --error-exitcode: any error or definite leak fails it
    WRAP=(env QUENCH_UNDER_VALGRIND=1 valgrind -q --error-exitcode=99 --leak-check=full
          --errors-for-leak-kinds=definite --show-leak-kinds=definite
          --suppressions="$ROOT/scripts/valgrind.supp")
    run_busted valgrind "$LOGDIR/busted-valgrind.log" "${vspecs[@]}"
    WRAP=()
  else
    record "busted valgrind" 0 1   # deps.sh installs it: missing means broken
  fi
fi

# --- 2. luacheck ---------------------------------------------------------------
lint_dirs=()
for d in spec lua examples bench; do
  [ -d "$d" ] && [ -n "$(find "$d" -name '*.lua' -print -quit)" ] && lint_dirs+=("$d")
done
if [ ${#lint_dirs[@]} -gt 0 ]; then
  banner "luacheck ${lint_dirs[*]}"
  mkdir -p "$LOGDIR"
  luacheck --no-color --codes "${lint_dirs[@]}" | tee "$LOGDIR/luacheck.log"
  lrc=${PIPESTATUS[0]}
  lok=$(grep -cE '^Checking .* OK$' "$LOGDIR/luacheck.log")
  lbad=$(grep -E '^Checking ' "$LOGDIR/luacheck.log" | grep -cvE ' OK$')
  [ "$lrc" -ne 0 ] && [ "$lbad" -eq 0 ] && lbad=1
  record "luacheck" "$lok" "$lbad"
fi

# --- 3. install with luarocks, run an example from the installed tree ----------
# One counted check: the rock builds and installs offline into a fresh tree,
# and `require "quench"` there finds the installed module (not build/).
if [ "${QUENCH_SKIP_INSTALL:-}" != 1 ]; then
  banner "install: luarocks make rocks/quench-scm-1.rockspec"
  mkdir -p "$LOGDIR"
  itree=$(mktemp -d "${TMPDIR:-/tmp}/quench-tree.XXXXXX")
  ilog=$LOGDIR/install.log
  # a stale CMake cache (e.g. from a clone at another path) would break the build
  rm -rf build.luarocks
  if luarocks --lua-version=5.4 --tree="$itree" make rocks/quench-scm-1.rockspec >"$ilog" 2>&1 &&
     env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 bash -c '
       set -e
       eval "$(luarocks --lua-version=5.4 --tree="$1" path)"
       cd "$1"
       lua5.4 "$2/scripts/check_install.lua" "$1"
       lua5.4 "$2/examples/demo.lua"' _ "$itree" "$ROOT" >>"$ilog" 2>&1 &&
     grep -q '^demo done$' "$ilog"; then
    tail -n 3 "$ilog"
    record "install" 1 0
  else
    cat "$ilog"
    echo "install: failed (log: $ilog)" >&2
    record "install" 0 1
  fi
  rm -rf "$itree" build.luarocks
fi

# --- 4. ASan + UBSan build -----------------------------------------------------
if [ "${QUENCH_SKIP_ASAN:-}" != 1 ]; then
  # exitcode=86: a sanitizer report (LeakSanitizer's too) fails the process
  # even where the program would have exited 0.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87
  export LSAN_OPTIONS=exitcode=86:report_objects=1
  if build build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="-O1 -g" \
                      -DQUENCH_SANITIZE=ON -DQUENCH_ASAN_NODELETE=OFF; then
    run_ctest build-asan
    if have_specs; then
      # lua5.4 is not instrumented: the runtimes must be loaded first.
      PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
      run_busted asan "$LOGDIR/busted-asan.log" --run=asan
      PRELOAD=
    fi
  fi
fi

# --- 5. libFuzzer harness over the core (optional: needs clang) ---------------
# One counted check: fuzz_core builds and runs 20,000 inputs (at most 60 s)
# with no crash, invariant violation, leak or sanitizer report. Skipped, and
# said so, where clang is missing: CI does not depend on it.
if [ "${QUENCH_SKIP_FUZZ:-}" != 1 ]; then
  if command -v clang >/dev/null; then
    banner "fuzz core (libFuzzer: build-fuzz/fuzz_core)"
    mkdir -p "$LOGDIR"
    flog=$LOGDIR/fuzz-core.log
    fcorpus=$(mktemp -d "${TMPDIR:-/tmp}/quench-fuzz.XXXXXX")
    cp core/test/fuzz_corpus/* "$fcorpus"/
    if CC=clang cmake -S . -B build-fuzz -DQUENCH_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >"$flog" 2>&1 &&
       cmake --build build-fuzz --target fuzz_core -j "$JOBS" >>"$flog" 2>&1 &&
       (cd "$fcorpus" && "$ROOT/build-fuzz/fuzz_core" -runs=20000 -max_total_time=60 \
          -artifact_prefix="$LOGDIR/fuzz-core-" "$fcorpus") >>"$flog" 2>&1; then
      grep -E '^Done [0-9]+ runs' "$flog" | tail -n1
      record "fuzz core" 1 0
    else
      tail -n 40 "$flog"
      echo "fuzz core: failed (log: $flog; a crashing input is saved as $LOGDIR/fuzz-core-crash-*)" >&2
      record "fuzz core" 0 1
    fi
    rm -rf "$fcorpus"
  else
    echo "fuzz core: skipped (clang not installed; apt-get install clang to run it)"
  fi
fi

# --- totals --------------------------------------------------------------------
banner summary
printf '%s\n' "${SUMMARY[@]}"
extra=""
[ "$SKIPPED" -gt 0 ] && extra=", $SKIPPED skipped"
echo "$PASSED passed, $FAILED failed$extra"
[ "$FAILED" -eq 0 ]
