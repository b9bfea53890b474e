-- Every examples/*.lua runs in a child lua5.4 (LUA_CPATH = ours), exits 0 and
-- prints its key lines, in order. The scenario examples run on the virtual
-- clock, so their output is exact; demo.lua uses the real clock and short
-- sleeps; graceful_shutdown.lua waits for a signal, which is sent to it.
-- An example without an entry below is still run: it must exit 0, print
-- something and lose no error; give it an entry to check its key lines.

-- Per example: `lines`, plain substrings expected in this order; `absent`,
-- substrings that must not appear; `signal`, sent once `ready` is printed.
local EXPECT = {
  ["deadline_scope.lua"] = {
    lines = { "[ 0.00 s] req-7: deadline 3.00 s", "[ 0.50 s] req-7: read from replica b (branch 2)",
              "[ 0.50 s] req-7: child failed: bad input",
              "[ 3.00 s] req-7: worker 1: cancelled, flushing", "[ 3.50 s] req-7: worker 1: flushed",
              "[ 3.50 s] req-7: scope ended: timeout? true", "[ 3.50 s] -: done" },
    also = { "[ 3.00 s] req-7: worker 2: cancelled, flushing", "[ 3.50 s] req-7: worker 2: flushed" },
  },
  ["rate_limited_poller.lua"] = {
    lines = { "[ 0.00 s] poll: attempt 1 failed (503 from service), again in 0.25 s",
              "[ 0.50 s] poll scheduled at 0.00 got 2", "[ 1.00 s] poll scheduled at 1.00 got 3",
              "[ 1.75 s] debounced: 2 change(s) applied",
              "[ 4.10 s] poll scheduled at 2.00 got 5", "[ 4.60 s] poll scheduled at 4.00 got 6",
              "[ 4.60 s] closing: 2 change(s) applied", "[ 4.60 s] done after 6 calls" },
    absent = { "scheduled at 3.00" },
  },
  ["unix_datagrams.lua"] = {
    lines = { 'collector: "boot finished" from an unnamed socket',
              'collector: "user 42 logged in" from /', "app: ok 2", "collector saw\t2\tlines" },
  },
  ["demo.lua"] = {
    lines = { "fast: sleeping 0.05 s", "slow: sleeping 3600 s", "fast: woke up",
              "joined:\ttrue\tfast finished", "slow: <close> ran", "slow: defer ran",
              "slow was aborted, its cleanup already ran:\tfalse\tcancelled", "demo done" },
    absent = { "slow: woke up" },
  },
  ["sniff_server.lua"] = {
    lines = { "line client got: PONG", "server: served PING",
              "web client got: HTTP/1.0 200 OK (4194331 more bytes)",
              "server: served GET / HTTP/1.0", "server: served GET /big HTTP/1.0",
              "stuck client, reading 2 s later: part of the answer (cut), then "
                .. "ECONNRESET: connection reset by peer", "done" },
  },
  ["search_as_you_type.lua"] = {
    lines = { "[0.00 s] request \"R\" sent",
              "[0.30 s] user typed \"Ru\"", "[0.30 s] request \"R\": connection closed",
              "[0.60 s] request \"Ru\": connection closed",
              "[0.90 s] request \"Rus\": connection closed",
              "[0.90 s] request \"Rust\" sent",
              "[1.90 s] UI shows: 28 results for \"Rust\"",
              "[3.90 s] done: only the last query's results were shown" },
    absent = { "results for \"R\"", "results for \"Ru\"", "results for \"Rus\"" },
  },
  ["race.lua"] = {
    lines = { "[0.10 s] Fast task completed", "[0.10 s] Slow task: cleanup ran",
              "[0.10 s] select returned branch 1: Fast won",
              "[2.10 s] aborting the parent in the middle of its race",
              "[2.10 s] Left task: cleanup ran", "[2.10 s] Right task: cleanup ran",
              "select_biased: the first branch won 20 of 20",
              "select: both branches won: yes",
              "messages left: 40 of 80" },
    absent = { "Slow task completed", "Left task completed", "Right task completed" },
  },
  ["https_get.lua"] = {
    lines = { "status: HTTP/1.1 200 OK", "body: hello over TLSv1.3",
              "server certificate: CN=localhost, issued by CN=example CA",
              "with the system trust store:\tnil\tETLS_UNKNOWN_CA: certificate verify failed" },
  },
  ["timeout.lua"] = {
    lines = { "[ 2.00 s] fetch_data: connection closed",
              "[ 2.00 s] Timed out (timeout: deadline elapsed). The fetch was dropped.",
              "[ 3.00 s] Got data: Data arrived",
              "inside the branch, same task: true",
              "[ 4.00 s] nested 5 s around 1 s: outer finished, inner timed out, after 1 s",
              "[ 7.00 s] joined a 60 s task within 3 s: false; leaving the scope aborts it",
              "[ 7.00 s] fetch_data: connection closed", "[ 7.00 s] done" },
  },
  ["token_tree.lua"] = {
    lines = { "[0.33 s] main: client 1 disconnects: cancel conn1 only",
              "[0.38 s] conn 1: stopped after 3 rounds (client went away)",
              "[0.63 s] main: shutdown: cancel the root",
              "[0.68 s] main: everything stopped; ingest cancelled: true, "
                .. "conn1 reason kept: client went away" },
    -- the order among the tasks stopped by the root's cancel is not the point
    also = { "[0.68 s] audit log: flushed (cancelled: shutdown)",
             "[0.68 s] metrics: stopped after 2 rounds (shutdown)",
             "[0.68 s] ingest: stopped after 6 rounds (shutdown)",
             "[0.68 s] conn 2: stopped after 6 rounds (shutdown)" },
    absent = { "conn 1: stopped after 3 rounds (shutdown)" },
  },
  ["graceful_cancel.lua"] = {
    lines = { "[1.00 s] cancel returned at once; task done yet? false",
              "[1.00 s] shielded: work interrupted: cancelled: shutdown",
              "[1.50 s] shielded: buffer flushed", "[1.50 s] shielded: <close> ran",
              "[1.50 s] join: false, cancelled: shutdown",
              "[2.50 s] unshielded: flush failed: cancelled: shutdown",
              "[4.00 s] quick: buffer flushed", "[4.00 s] stop(2) returned after 0.5 s",
              "[7.00 s] slow: <close> ran",
              "[7.00 s] stop(2) returned after 2 s: the slow cleanup was aborted",
              "abort with an awaiting cleanup fails: quench.sleep: cannot wait in drop-time cleanup" },
    absent = { "unshielded: buffer flushed", "slow: buffer flushed" },
  },
  ["shutdown_channels.lua"] = {
    lines = { "[3.50 s] [manager] sending shutdown to all workers",
              "[3.50 s] [manager] all workers have shut down",
              "[6.00 s] [worker 3] shutdown (stop) after 2 job(s)",
              "[7.50 s] [worker 4] shutdown (closed) after 1 job(s)",
              "[7.50 s] [manager] done" },
    also = { "[3.50 s] [worker 1] shutdown (shutdown) after 3 job(s)",
             "[3.50 s] [worker 2] shutdown (shutdown) after 3 job(s)" },
  },
  ["transaction.lua"] = {
    lines = { "[ 0.50 s] abort at +0.5s: ROLLBACK (on drop)",
              "[ 0.50 s] abort at +0.5s: task done, 0 transaction(s) open",
              "[ 6.25 s] abort at +2.25s: ROLLBACK (on drop)",
              "[10.50 s] abort at +3s: COMMIT",
              "[11.00 s] abort at +3s: task done, 0 transaction(s) open",
              "[13.70 s] cancelled: ROLLBACK (awaited the server)",
              "[13.70 s] cancelled task joined: cancelled: shutdown",
              "[13.70 s] done: 0 transaction(s) open" },
    absent = { "+0.5s: COMMIT", "+2.25s: COMMIT", "+3s: ROLLBACK", "cancelled: COMMIT" },
  },
  -- Examples that need a part of quench, or a library, that may be missing:
  -- `needs` names it, and the example's spec is pending without it.
  ["mutex_guard.lua"] = {
    lines = { "[0.00 s] transfer 1: locked; debit a",
              "[0.50 s] main: t1 aborted; mutex still locked? false",
              "[0.50 s] main: total is 70 (should be 100): a drop is not a rollback",
              "[1.00 s] transfer 2: dropped half-way: debit undone",
              "[1.00 s] main: t2 aborted; locked? false; total 100",
              "[1.20 s] main: lock within 0.2 s? false; locked by transfer 3 still? true",
              "[2.00 s] transfer 3: credit b; done",
              "[2.00 s] main: locked it myself; total 100" },
    absent = { "transfer 1: credit b", "transfer 2: credit b" },
  },
  ["blocking_cancel.lua"] = {
    needs = { "blocking" },
    lines = { "primes below 1000: 168 (ran to the end)",
              "timeout: false, timeout: deadline elapsed",
              "the event loop ran during the blocking work: true",
              "worker: stopped early: saw blocking_cancelled()",
              "aborted: cancelled: not needed; the worker has not finished yet: true",
              "worker: finished anyway (its result was dropped)", "done" },
  },
  ["sqlite_rollback.lua"] = {
    needs = { "blocking", "luasql.sqlite3" },
    lines = { "batch 1: COMMIT", "rows: 3",
              "batch 2: inserted figs", "batch 2: inserted dates",
              "batch 2: ROLLBACK (the task was dropped)",
              "batch 2: task cancelled: user pressed cancel",
              "rows: 3 (batch 2 left nothing behind)",
              "batch 3: ROLLBACK (the task was dropped)", "batch 3 in time: false; rows: 3",
              "batch 4: inserted melons", "batch 4: COMMIT", "rows: 4" },
    absent = { "batch 2: COMMIT", "batch 2: inserted limes", "batch 3: COMMIT" },
  },
  ["http_api.lua"] = {
    needs = { "http" },
    lines = { "201\t", "\"name\":\"apple\"", "201\t", "\"name\":\"pear\"",
              "400\t{\"error\":\"expected {\\\"name\\\": string}\"}",
              "200\t[", "404\t{\"error\":\"no such route\"}",
              "report handler: cleanup ran", "200\t", "report handler: cleanup ran",
              "504\t{\"error\":\"the request took too long\"}",
              "report handler: cleanup ran",
              "GET /report: cancelled: quench.http: the client went away",
              "server stopped" },
  },
  ["search_as_you_type_http.lua"] = {
    needs = { "http" },
    lines = { "user typed \"R\"", "request \"R\" sent", "user typed \"Ru\"",
              "server: search \"R\" cancelled (quench.http: the client went away)",
              "request \"Rust\" sent", "UI shows: 28 results for \"Rust\"",
              "results shown: 1; server handlers cancelled: 3 of 3 dropped requests",
              "server stopped" },
    absent = { "results for \"R\"", "results for \"Ru\"", "results for \"Rus\"",
               "search \"Rust\" cancelled" },
  },
  ["dns_websocket.lua"] = {
    needs = { "tcp", "process" },
    lines = { "chat.example.test has address 127.0.0.1",
              "_chat._tcp.example.test is at chat.example.test port ",
              "nowhere.example.test: refused",
              "websocket:\techo: hello\ttext\tnil",
              "websocket:\tare you there?\tpong\tnil",
              "a read bounded by quench.timeout:\tfalse\ttimeout: deadline elapsed", "done" },
  },
  ["https_luasec.lua"] = {
    needs = { "tcp" },
    lines = { "got \"alpha after 0.2 s over TLSv1.3\" (status 200)",
              "got \"beta after 0.2 s over TLSv1.3\" (status 200)",
              "got \"gamma after 0.2 s over TLSv1.3\" (status 200)",
              "the 5 s request within 0.1 s:\tfalse\ttimeout: deadline elapsed",
              "a certificate for another name:\tnil\tcertificate verify failed",
              "handshake:\tTLSv1.3\tpeer:\tlocalhost\tverified:\ttrue",
              "status line:\tHTTP/1.1 200 OK", "done" },
  },
  ["http_luasocket.lua"] = {
    needs = { "tcp" },
    lines = { "got \"alpha after 0.3 s\" (status 200)", "got \"beta after 0.3 s\" (status 200)",
              "got \"gamma after 0.3 s\" (status 200)",
              "slow requests the server had in progress at once: 3",
              "the 5 s request within 0.1 s: false (timeout: deadline elapsed)",
              "with http.TIMEOUT = 0.1: nil, timeout",
              "POST: 1 200 \"POSTED THROUGH LTN12\"", "done" },
  },
  ["search_server.lua"] = {
    needs = { "tcp" },
    lines = { "user typed \"R\"", "client: request \"R\" sent", "user typed \"Ru\"",
              "user typed \"Rust\"", "client: request \"Rust\" sent",
              "server: answered \"Rust\"", "UI shows: 28 results for \"Rust\"",
              "done: only the last query was answered" },
    also = { "server: client of \"R\" went away: search dropped",
             "server: client of \"Ru\" went away: search dropped",
             "server: client of \"Rus\" went away: search dropped" },
    absent = { "server: answered \"R\"", "server: answered \"Ru\"", "server: answered \"Rus\"",
               "results for \"R\"", "results for \"Ru\"", "results for \"Rus\"" },
  },
  -- Needs redis-server and lua-nginx-redis (scripts/deps.sh installs them):
  -- without them it prints SKIPPED and this entry fails, loudly.
  ["redis_cache.lua"] = {
    lines = { "first:  144 (computed 1)", "second: 144 (computed 1)",
              "concurrent: 50 of 50 answers right; a pooled connection was reused again and again",
              "bounded lookup: false (timeout: deadline elapsed)",
              "aborted request: its connection is closed",
              "next user: 144 on a connection reused", "jobs still queued: 1",
              "capped pool: 10 answers over 2 connections",
              "redis stopped; done" },
    absent = { "SKIPPED" },
  },
  ["graceful_shutdown.lua"] = {
    signal = "INT",
    lines = { "ready: waiting for SIGINT or SIGTERM", "shutdown: SIGINT",
              "flush: all workers stopped", "exit 0" },
    also = { "worker 1: flushed", "worker 2: flushed", "worker 3: flushed" },
  },
}

local function slurp(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p
end

-- Run examples/<name> in a child lua5.4 (at most 60 s); send `signal` once it
-- printed "ready". `timeout --foreground`: without it, timeout passes a signal
-- on to its child AND to its whole process group, so the child gets it twice.
-- Returns its output (stdout and stderr) and exit status.
local function run_example(name, signal)
  local out, rc, script = tmpname(), tmpname(), tmpname()
  local wait_and_signal = ""
  if signal then
    wait_and_signal = string.format([[
i=0
while ! grep -q ready %q && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
kill -%s $pid
]], out, signal)
  end
  local f = assert(io.open(script, "w"))
  f:write(string.format([[
LUA_CPATH=%q LUA_PATH=%q timeout --foreground 60 lua5.4 %q > %q 2>&1 &
pid=$!
%swait $pid
echo $? > %q
]], package.cpath, package.path, "examples/" .. name, out, wait_and_signal, rc))
  f:close()
  os.execute("sh " .. script)
  local output, status = slurp(out), tonumber(slurp(rc))
  os.remove(out); os.remove(rc); os.remove(script)
  return output, status
end

-- The first of `needs` that is missing: "quench.<name>" (a field of the
-- module) or a Lua module (a name with a dot, e.g. "luasql.sqlite3").
local function missing_need(needs)
  local quench = require "quench"
  for _, need in ipairs(needs or {}) do
    if need:find(".", 1, true) then
      if not pcall(require, need) then return need end
    elseif quench[need] == nil then
      return "quench." .. need
    end
  end
  return nil
end

local function list_examples()
  local names = {}
  local p = io.popen("ls examples/*.lua 2>/dev/null")
  for path in p:lines() do names[#names + 1] = path:match("([^/]+)$") end
  p:close()
  table.sort(names)
  return names
end

describe("examples", function()
  local names = list_examples()

  it("include the scenarios of the guide", function()
    for _, required in ipairs({ "demo.lua", "search_as_you_type.lua", "race.lua", "timeout.lua",
                                "token_tree.lua", "graceful_cancel.lua", "shutdown_channels.lua",
                                "graceful_shutdown.lua", "mutex_guard.lua", "blocking_cancel.lua",
                                "sqlite_rollback.lua", "search_server.lua" }) do
      local found = false
      for _, n in ipairs(names) do found = found or n == required end
      assert.is_true(found, "missing examples/" .. required)
    end
  end)

  for _, name in ipairs(names) do
    local expect = EXPECT[name] or { lines = {} }
    it(name .. " runs, exits 0 and prints its key lines in order", function()
      local missing = missing_need(expect.needs)
      if missing then
        pending("needs " .. missing)
        return
      end
      local out, status = run_example(name, expect.signal)
      assert.are.equal(0, status, "exit status " .. tostring(status) .. ", output:\n" .. out)
      assert.is_true(#out > 0, "no output")
      local pos = 1
      for _, line in ipairs(expect.lines) do
        local s, e = out:find(line, pos, true)
        assert.is_not_nil(s, "expected, in order: " .. line .. "\noutput:\n" .. out)
        pos = e + 1
      end
      for _, line in ipairs(expect.also or {}) do
        assert.is_not_nil(out:find(line, 1, true), "expected: " .. line .. "\noutput:\n" .. out)
      end
      for _, line in ipairs(expect.absent or {}) do
        assert.is_nil(out:find(line, 1, true), "not expected: " .. line .. "\noutput:\n" .. out)
      end
      assert.is_nil(out:find("failed and nobody joined it", 1, true), out)   -- no lost errors
    end)
  end
end)
