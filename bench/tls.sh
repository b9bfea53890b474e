#!/usr/bin/env bash
# TLS beside plain TCP, quench beside tokio, in one invocation: the
# workloads of bench/tls.lua (W6 echo 100 x 1000 x 64 B and a 256 MiB bulk
# transfer, each over TCP and over TLS; BULKP/BULKTLSP with the writer in
# another process) run on quench and on bench/peers/tokio-tls (tokio 1.24 +
# tokio-openssl 0.6, Debian's crates, current-thread runtime: one thread, as
# one Lua state), with one set of certificates made here with `openssl`.
# Prints, from the median of RUNS passes, each value, TLS / TCP per peer, and
# quench / tokio per workload; then the CPU time (user + system) of each
# run's process, writer child included: what does not depend on how busy
# the machine's other cores are.
#
#   bash bench/tls.sh
#   RUNS=5 bash bench/tls.sh
#   WORKLOADS="W6 W6TLS" BULK_MB=64 bash bench/tls.sh
#   FLAVORS="ct mt" bash bench/tls.sh        # also tokio's 2-worker runtime
#
# Needs (Debian): cmake and a C compiler (quench), openssl, cargo and the
# crates of librust-tokio-dev and librust-tokio-openssl-dev (the peer builds
# offline against /usr/share/cargo/registry; as root, SETUP=1 installs them
# with apt-get). Without cargo or the crates, TOKIO=0 runs quench alone.
# Each (workload, peer) pair runs in its own process, passes interleaved.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=$(realpath -m "${BUILD_DIR:-$REPO/build}")
RUNS=${RUNS:-3}
WORKLOADS=${WORKLOADS:-"W6 W6TLS BULK BULKTLS BULKP BULKTLSP"}
FLAVORS=${FLAVORS:-ct}
TIMEOUT_S=${TIMEOUT_S:-300}
CARGO=${CARGO:-$(command -v cargo || echo "$HOME/.cargo/bin/cargo")}
export W6_CLIENTS W6_ROUNDS W6_SIZE BULK_MB BULK_READ 2>/dev/null || true
log() { echo "[tls bench] $*" >&2; }

TMP=$(mktemp -d /tmp/quench-tls-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# ---- quench
if [ "${QUENCH_BUILD:-1}" != 0 ]; then
  grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null ||
    cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >"$TMP/cmake.log"
  cmake --build "$BUILD_DIR" --target quench -j 2 >"$TMP/build.log" ||
    { cat "$TMP/build.log" >&2; exit 1; }
fi

# ---- the tokio peer, offline against Debian's crate registry
PEERS=quench
if [ "${TOKIO:-1}" != 0 ]; then
  if [ "${SETUP:-0}" = 1 ] && [ "$(id -u)" = 0 ] && ! ls -d /usr/share/cargo/registry/tokio-openssl-* >/dev/null 2>&1; then
    apt-get update >&2 && apt-get install -y librust-tokio-dev librust-tokio-openssl-dev >&2
  fi
  ls -d /usr/share/cargo/registry/tokio-openssl-* >/dev/null 2>&1 || {
    log "Debian's tokio crates are missing: apt-get install librust-tokio-dev librust-tokio-openssl-dev (or TOKIO=0)"
    exit 1
  }
  [ -x "$CARGO" ] || { log "cargo is missing (or TOKIO=0)"; exit 1; }
  CARGO_HOME_DIR="$BUILD_DIR/bench/cargo-home-tls"
  mkdir -p "$CARGO_HOME_DIR"
  cat >"$CARGO_HOME_DIR/config.toml" <<'EOF'
[source.crates-io]
replace-with = "debian-packages"
[source.debian-packages]
directory = "/usr/share/cargo/registry"
[net]
offline = true
EOF
  log "building bench/peers/tokio-tls (cargo --offline; about a minute the first time)"
  (cd "$REPO/bench/peers/tokio-tls" && CARGO_HOME="$CARGO_HOME_DIR" \
     CARGO_TARGET_DIR="$BUILD_DIR/bench/cargo-target" "$CARGO" build --release --offline) \
     >"$TMP/cargo.log" 2>&1 || { cat "$TMP/cargo.log" >&2; exit 1; }
  TOKIO_BIN="$BUILD_DIR/bench/cargo-target/release/bench-tokio-tls"
  for f in $FLAVORS; do PEERS="$PEERS tokio-$f"; done
fi

# ---- certificates: a CA and a P-256 certificate for localhost/127.0.0.1
NEWKEY="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
(cd "$TMP" &&
  openssl req -x509 $NEWKEY -keyout ca.key -out ca.pem -days 1 -subj /CN=bench &&
  openssl req $NEWKEY -keyout s.key -out s.csr -subj /CN=localhost &&
  echo "subjectAltName=DNS:localhost,IP:127.0.0.1" >ext &&
  openssl x509 -req -in s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -extfile ext -out s.pem) >"$TMP/pki.log" 2>&1 || { cat "$TMP/pki.log" >&2; exit 1; }
export TLS_CA="$TMP/ca.pem" TLS_CERT="$TMP/s.pem" TLS_KEY="$TMP/s.key"

# ---- runs, interleaved: pass, workload, peer
RESULTS="$TMP/results.txt"
: >"$RESULTS"
for run in $(seq "$RUNS"); do
  for w in $WORKLOADS; do
    for p in $PEERS; do
      case $p in
        quench) cmd=(env "LUA_CPATH=$BUILD_DIR/?.so;;" lua5.4 "$REPO/bench/tls.lua" "$w") ;;
        tokio-*) cmd=("$TOKIO_BIN" "${p#tokio-}" "$w") ;;
      esac
      line=$(/usr/bin/time -f "%U %S" -o "$TMP/time.txt" \
               timeout -k 5 "$TIMEOUT_S" "${cmd[@]}" 2>>"$TMP/stderr.log") || true
      [ -n "$line" ] || line="peer=$p workload=$w value=0 unit=? check=FAIL"
      line="$line cpu_s=$(awk 'END { printf "%.3f", $1 + $2 }' "$TMP/time.txt")"
      echo "$line" | tee -a "$RESULTS" >&2
    done
  done
done

# ---- tables (medians of the passes that checked ok)
lua5.4 - "$RESULTS" "$RUNS" "$WORKLOADS" "$PEERS" <<'EOF'
local file, runs, workloads, peers = ...
local vals, units, cpus = {}, {}, {}
for line in io.lines(file) do
  local f = {}
  for k, v in line:gmatch("(%S+)=(%S+)") do f[k] = v end
  if f.check == "ok" then
    local key = f.peer .. " " .. f.workload
    vals[key] = vals[key] or {}
    table.insert(vals[key], tonumber(f.value))
    cpus[key] = cpus[key] or {}
    table.insert(cpus[key], tonumber(f.cpu_s))
    units[f.workload] = f.unit
  end
end
local function median(peer, w, from)
  local xs = (from or vals)[peer .. " " .. w]
  if not xs then return nil end
  table.sort(xs)
  local n = #xs
  return n % 2 == 1 and xs[(n + 1) // 2] or (xs[n // 2] + xs[n // 2 + 1]) / 2
end
local function words(s) local t = {} for x in s:gmatch("%S+") do t[#t + 1] = x end return t end
local ws, ps = words(workloads), words(peers)
local function fmt(x) return x and ("%.0f"):format(x) or "-" end
local function ratio(a, b) return (a and b and b > 0) and ("%.2f"):format(a / b) or "-" end
print(("\nMedian of %s run(s); %s CPUs, Linux %s, load %s"):format(runs,
      io.popen("nproc"):read("l"), io.popen("uname -r"):read("l"),
      io.open("/proc/loadavg"):read("l"):match("^(%S+ %S+ %S+)")))
print("\n| workload | unit | " .. table.concat(ps, " | ") .. " |" ..
      (#ps > 1 and " quench / " .. ps[2] .. " |" or ""))
print("|---|---|" .. ("---|"):rep(#ps + (#ps > 1 and 1 or 0)))
for _, w in ipairs(ws) do
  local row = { w, units[w] or "?" }
  for _, p in ipairs(ps) do row[#row + 1] = fmt(median(p, w)) end
  if #ps > 1 then row[#row + 1] = ratio(median("quench", w), median(ps[2], w)) end
  print("| " .. table.concat(row, " | ") .. " |")
end
print("\n| TLS / TCP | " .. table.concat(ps, " | ") .. " |")
print("|---|" .. ("---|"):rep(#ps))
for _, pair in ipairs({ { "W6TLS", "W6" }, { "BULKTLS", "BULK" }, { "BULKTLSP", "BULKP" } }) do
  local row = { pair[1] .. " / " .. pair[2] }
  for _, p in ipairs(ps) do row[#row + 1] = ratio(median(p, pair[1]), median(p, pair[2])) end
  print("| " .. table.concat(row, " | ") .. " |")
end
print("\n| CPU s per run (user + system) | " .. table.concat(ps, " | ") .. " |")
print("|---|" .. ("---|"):rep(#ps))
for _, w in ipairs(ws) do
  local row = { w }
  for _, p in ipairs(ps) do
    local c = median(p, w, cpus)
    row[#row + 1] = c and ("%.2f"):format(c) or "-"
  end
  print("| " .. table.concat(row, " | ") .. " |")
end
EOF
