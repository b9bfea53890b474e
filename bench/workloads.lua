-- quench's implementation of the workloads of docs/design.md §7 (W1..W7) plus W7s,
-- through the public API only. Same interface and output as the peers of
-- ../shared/bench-peers (see bench/README.md):
--
--   LUA_CPATH='./build/?.so;;' lua5.4 bench/workloads.lua Wn [KEY=VALUE ...]
--   LUA_CPATH='./build/?.so;;' lua5.4 bench/workloads.lua all
--
-- prints one line
--   peer=quench workload=Wn value=N unit=U check=ok|FAIL|unsupported [k=v ...]
-- and exits 0 (ok), 1 (check failed) or 3 (unsupported: the API the workload
-- needs is not in this build of quench; detected at run time).
-- Sizes: defaults below, overridden by the environment (W1_N=...), then by
-- KEY=VALUE arguments.

local defaults = {
  W1_N = 100000,        -- tasks spawned and joined
  W2_N = 1000000,       -- ping-pong round trips (2 channel messages each)
  W3_N = 100000,        -- sleeping tasks
  W3_MAX_MS = 100,      -- each sleeps x mod (W3_MAX_MS + 1) ms, x from the LCG
  W3_SEED = 42,
  W4_N = 100000,        -- sleeping tasks aborted
  W4_SLEEP_S = 3600,
  W5_N = 1000000,       -- timeout(recv) on a ready channel
  W5_TIMEOUT_S = 1,
  W6_CLIENTS = 100,
  W6_ROUNDS = 1000,     -- round trips per client
  W6_SIZE = 64,         -- bytes per message
  W7_N = 100000,        -- idle tasks blocked on receive
  W7S_N = 100000,       -- idle tasks blocked in quench.sleep
  W7S_SLEEP_S = 3600,
}
local ORDER = { "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W7S" }
local NAMES = { W7S = "W7s" }   -- how a workload is printed

local function config(argv)
  local cfg = {}
  for k, v in pairs(defaults) do
    local e = os.getenv(k)
    cfg[k] = e and (math.tointeger(tonumber(e)) or tonumber(e)) or v
  end
  for i = 1, #argv do
    local k, v = argv[i]:match("^([%w_]+)=(.*)$")
    if k then
      cfg[k:upper()] = math.tointeger(tonumber(v)) or tonumber(v) or v
    elseif not cfg.workload then
      cfg.workload = argv[i]:upper()
    end
  end
  return cfg
end

local cfg = config(arg)
local PEER = "quench"

---------------------------------------------------------------- output

local function fmt(v)
  if math.type(v) == "integer" then return tostring(v) end
  if v >= 100 then return string.format("%.0f", v) end
  return string.format("%.3f", v)
end

local function name_of(w) return NAMES[w] or w end

-- Print the result line and exit: 0 when check holds, else 1.
local function report(w, value, unit, ok, extra)
  local parts = { string.format("peer=%s workload=%s value=%s unit=%s check=%s",
    PEER, name_of(w), fmt(value), unit, ok and "ok" or "FAIL") }
  local keys = {}
  for k in pairs(extra or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = extra[k]
    parts[#parts + 1] = k .. "=" .. (type(v) == "number" and fmt(v) or tostring(v))
  end
  io.write(table.concat(parts, " "), "\n")
  io.flush()
  os.exit(ok and 0 or 1)
end

local function unsupported(w, why)
  io.write(string.format("peer=%s workload=%s value=NA unit=- check=unsupported reason=%s\n",
    PEER, name_of(w), (why:gsub("%s", "_"))))
  io.flush()
  os.exit(3)
end

---------------------------------------------------------------- helpers

local loaded, quench = pcall(require, "quench")
if not loaded then
  -- Not an API gap: the module itself is missing. Still the peers' format.
  io.stderr:write(tostring(quench), "\n")
  unsupported(cfg.workload or "W?", "quench does not load (set LUA_CPATH to the build dir)")
end

-- `need(w, "channel", "tcp.listen", ...)`: every name must exist in the module.
local function need(w, ...)
  for i = 1, select("#", ...) do
    local path = select(i, ...)
    local v = quench
    for part in path:gmatch("[^.]+") do v = type(v) == "table" and v[part] or nil end
    if v == nil then unsupported(w, "no quench." .. path) end
  end
end

-- Wall clock for timings: LuaSocket's gettimeofday when present (independent
-- of quench, so the early-wake check of W3 does not trust quench's own clock),
-- else quench.now() (monotonic; only valid inside quench.run).
local has_socket, socket_core = pcall(require, "socket.core")
local now = has_socket and socket_core.gettime or function() return quench.now() end
local CLOCK = has_socket and "gettimeofday" or "quench.now"

local function rss()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")) * 1024
end

-- Lua heap in bytes after two full collections (the second finishes what
-- finalizers of the first left).
local function heap()
  collectgarbage("collect")
  collectgarbage("collect")
  return collectgarbage("count") * 1024
end

-- The peers' LCG: x = (x*1103515245 + 12345) mod 2^31.
local function w3_schedule()
  local x = cfg.W3_SEED & 0x7fffffff
  local t, sum = {}, 0
  for i = 1, cfg.W3_N do
    x = (x * 1103515245 + 12345) & 0x7fffffff
    local ms = x % (cfg.W3_MAX_MS + 1)
    t[i] = ms
    sum = sum + ms
  end
  return t, sum
end

---------------------------------------------------------------- workloads

local W = {}

-- W1 spawn+join: spawn N tasks returning i, join all in order and sum.
function W.W1()
  local N = cfg.W1_N
  local elapsed, sum = quench.run(function()
    local t0 = now()
    local hs = {}
    local function body(x) return x end
    for i = 1, N do hs[i] = quench.spawn(body, i) end
    local s = 0
    for i = 1, N do
      local _, v = hs[i]:join()
      s = s + v
    end
    return now() - t0, s
  end)
  report("W1", N / elapsed, "tasks/s", sum == N * (N + 1) // 2, { elapsed_s = elapsed })
end

-- W2 ping-pong: task B echoes what main sends on `ping` back on `pong`.
function W.W2()
  need("W2", "channel")
  local N = cfg.W2_N
  local elapsed, got = quench.run(function()
    local ping, pong = quench.channel(1), quench.channel(1)
    local b = quench.spawn(function()
      for _ = 1, N do pong:send(ping:recv()) end
    end)
    local t0 = now()
    local s = 0
    for i = 1, N do
      ping:send(i)
      s = s + pong:recv()
    end
    local e = now() - t0
    b:join()
    return e, s
  end)
  report("W2", N / elapsed, "roundtrips/s", got == N * (N + 1) // 2, { elapsed_s = elapsed })
end

-- W3 timers: N tasks sleep LCG-chosen 0..100 ms; wall time from the first
-- spawn to the last wake. 1 % of the tasks check they did not wake early.
function W.W3()
  local sched, want = w3_schedule()
  local N = cfg.W3_N
  local early, sampled = 0, 0
  local elapsed, spawn_ms, sum = quench.run(function()
    local t0 = now()
    local slept = 0
    local hs = {}
    for i = 1, N do
      local ms = sched[i]
      hs[i] = quench.spawn(function()
        local s0 = (i % 100 == 0) and now() or nil
        quench.sleep(ms / 1000)
        if s0 then
          sampled = sampled + 1
          if (now() - s0) * 1000 < ms - 1 then early = early + 1 end
        end
        slept = slept + ms
      end)
    end
    local t1 = now()
    for i = 1, N do hs[i]:join() end
    return now() - t0, (t1 - t0) * 1000, slept
  end)
  report("W3", elapsed * 1000, "ms", sum == want and early == 0,
    { spawn_ms = spawn_ms, early_wakes_sampled = early .. "/" .. sampled, clock = CLOCK })
end

-- W4 mass cancel: N tasks hold a <close> resource and sleep; once all are
-- asleep, abort each in spawn order; value = time until every cleanup ran.
function W.W4()
  local N, S = cfg.W4_N, cfg.W4_SLEEP_S
  local cleaned, started = 0, 0
  local res_mt = { __close = function() cleaned = cleaned + 1 end }
  local elapsed, join_ms, cancelled = quench.run(function()
    local hs = {}
    local function body()
      local _r <close> = setmetatable({}, res_mt)
      started = started + 1
      quench.sleep(S)
      error("unreachable: the sleep was not cancelled")
    end
    for i = 1, N do hs[i] = quench.spawn(body) end
    while started < N do quench.yield() end   -- every task is in its sleep
    assert(cleaned == 0)
    local t0 = now()
    for i = 1, N do hs[i]:abort() end         -- abort = drop: cleanup runs before it returns
    local t1 = now()
    local n = 0
    for i = 1, N do
      local ok, err = hs[i]:join()
      if not ok and quench.is_cancelled(err) then n = n + 1 end
    end
    return t1 - t0, (now() - t1) * 1000, n
  end)
  report("W4", elapsed * 1000, "ms", cleaned == N and cancelled == N,
    { cleanups = cleaned, cancelled = cancelled, join_ms = join_ms })
end

-- W5 timeout fast path: buffered send, then receive under a 1 s timeout on
-- the same channel (the value is always there). Extra: the same loop
-- without the timeout.
function W.W5()
  need("W5", "channel", "timeout")
  local N, T = cfg.W5_N, cfg.W5_TIMEOUT_S
  local elapsed, plain, good, form = quench.run(function()
    local ch = quench.channel()
    -- the op form when the channel has it (docs/design.md: x_op), else a function branch
    local form = ch.recv_op and "op" or "function"
    local all = true
    local t0 = now()
    if ch.recv_op then
      for i = 1, N do
        ch:send(i)
        local ok, v = quench.timeout(T, ch:recv_op())
        if not ok or v ~= i then all = false end
      end
    else
      local recv = ch.recv
      for i = 1, N do
        ch:send(i)
        local ok, v = quench.timeout(T, recv, ch)
        if not ok or v ~= i then all = false end
      end
    end
    local e = now() - t0
    t0 = now()
    for i = 1, N do
      ch:send(i)
      if ch:recv() ~= i then all = false end
    end
    return e, now() - t0, all, form
  end)
  report("W5", N / elapsed, "ops/s", good, { notimeout_ops_per_s = N / plain, form = form })
end

-- W6 TCP echo on loopback: one acceptor spawns an echo task per connection;
-- C clients each do R round trips of SIZE bytes.
function W.W6()
  need("W6", "tcp.listen", "tcp.connect")
  local C, R, SZ = cfg.W6_CLIENTS, cfg.W6_ROUNDS, cfg.W6_SIZE
  local msg = string.rep("x", SZ)
  local elapsed, good = quench.run(function()
    local server = assert(quench.tcp.listen("127.0.0.1", 0, { nodelay = true }))
    local _, port = server:getsockname()
    local acceptor = quench.spawn(function()
      for _ = 1, C do
        local s = assert(server:accept())
        quench.spawn(function()
          while true do
            local data = s:read_some(4096)
            if not data then break end
            s:write(data)
          end
          s:close()
        end)
      end
    end)
    local t0 = now()
    local hs, all = {}, true
    for c = 1, C do
      hs[c] = quench.spawn(function()
        local s = assert(quench.tcp.connect("127.0.0.1", port, { nodelay = true }))
        for _ = 1, R do
          s:write(msg)
          if s:read(SZ) ~= msg then all = false end
        end
        s:close()
      end)
    end
    for c = 1, C do
      local ok, err = hs[c]:join()
      if not ok then error(err, 0) end
    end
    local e = now() - t0
    acceptor:join()
    server:close()
    return e, all
  end)
  report("W6", C * R / elapsed, "roundtrips/s", good, { elapsed_s = elapsed })
end

-- W7 idle memory: N tasks, each blocked on receive from its own channel;
-- handles not retained. (RSS after - RSS before the channels) / N.
function W.W7()
  need("W7", "channel")
  local N = cfg.W7_N
  local r = quench.run(function()
    local started = 0
    local chans = {}
    local function body(ch)
      started = started + 1
      ch:recv()
    end
    local heap0, rss0 = heap(), rss()
    for i = 1, N do chans[i] = quench.channel(1) end
    local heapc, rssc = heap(), rss()
    for i = 1, N do quench.spawn(body, chans[i]) end
    while started < N do quench.yield() end
    quench.yield()                              -- the last one reached its recv
    local heap1, rss1 = heap(), rss()
    for i = 1, N do chans[i]:close() end
    return { rss = (rss1 - rss0) / N, chan = (rssc - rss0) / N, task = (rss1 - rssc) / N,
             heap = (heap1 - heap0) / N, heap_chan = (heapc - heap0) / N, started = started }
  end)
  report("W7", math.floor(r.rss + 0.5), "bytes/task", r.started == N,
    { chan_bytes = r.chan, task_bytes = r.task, lua_heap_bytes_per_task = r.heap,
      lua_heap_chan_bytes = r.heap_chan, blocked = r.started })
end

-- W7s idle memory of sleeping tasks: N tasks blocked in quench.sleep(3600);
-- handles not retained. (RSS after all sleep - RSS before the spawns) / N,
-- after a full GC. Extras: the Lua heap per task, and the same two numbers
-- for the N tasks spawned but not started yet (pending).
function W.W7S()
  local N, S = cfg.W7S_N, cfg.W7S_SLEEP_S
  local r = quench.run(function()
    local started = 0
    local function body()
      started = started + 1
      quench.sleep(S)
    end
    local heap0, rss0 = heap(), rss()
    for _ = 1, N do quench.spawn(body) end
    local heapp, rssp = heap(), rss()
    while started < N do quench.yield() end
    quench.yield()                              -- the last one reached its sleep
    local heap1, rss1 = heap(), rss()
    return { rss = (rss1 - rss0) / N, heap = (heap1 - heap0) / N,
             pending = (rssp - rss0) / N, heap_pending = (heapp - heap0) / N,
             started = started, t_end = has_socket and now() }
  end)
  -- run returned after its teardown, which aborted the N sleepers: not part
  -- of the value, but reported (teardown_s, wall clock; needs LuaSocket)
  local extra = { lua_heap_bytes_per_task = r.heap, pending_bytes = r.pending,
                  lua_heap_pending_bytes = r.heap_pending, blocked = r.started }
  if r.t_end then extra.teardown_s = now() - r.t_end end
  report("W7S", math.floor(r.rss + 0.5), "bytes/task", r.started == N, extra)
end

---------------------------------------------------------------- main

if cfg.workload == "ALL" then
  -- each workload in its own process (RSS figures are per process)
  local lua = arg[-1] or "lua5.4"
  local worst = 0
  for _, w in ipairs(ORDER) do
    local cmd = string.format("%q %q %s", lua, arg[0], w)
    for i = 1, #arg do
      if arg[i]:match("=") then cmd = cmd .. string.format(" %q", arg[i]) end
    end
    local _, _, code = os.execute(cmd)
    if code ~= 0 and code ~= 3 then worst = 1 end
  end
  os.exit(worst)
end

local f = W[cfg.workload or ""]
if not f then
  io.stderr:write("usage: lua5.4 bench/workloads.lua W1|W2|W3|W4|W5|W6|W7|W7s|all [KEY=VALUE ...]\n")
  os.exit(2)
end
f()
