-- API fuzzing from Lua: every public function of the quench table and every
-- method (and __close/__tostring) of the objects quench makes, found by
-- enumeration (so new API is covered without editing this file), called
-- with random arguments: right and wrong types, huge and negative numbers,
-- NaN, nil, closed and used objects, objects of another runtime, from
-- tasks, select branches, <close> handlers and __gc finalizers. Plain Lua on
-- the threads of tasks and branches too: coroutine.resume (directly and from
-- a wrap function), coroutine.close and coroutine.status of the threads
-- their bodies found with coroutine.running(). TLS
-- servers and streams (made with certificates from spec/helpers/tls_pki.lua)
-- are in the pool from the start.
-- Acceptable outcomes: a result or a Lua error. A crash, a hang or a
-- sanitizer report is a bug.
--
-- Blocking calls are not skipped by name: each batch of calls runs in a
-- worker task that main watches with a (virtual) timeout and aborts when it
-- hangs, then a fresh worker goes on.
--
-- FUZZ_SEED=n (default 1) and FUZZ_CALLS=n (default 100000, 20000 under
-- valgrind: QUENCH_UNDER_VALGRIND=1) choose the run;
-- It walks into the (fixed) bugs 2, 4, 5 and 8 of docs/how-quench-is-tested.md (__gc
-- called directly, waits where the coroutine cannot yield, quench called
-- from finalizers and run callbacks, objects used after their __gc);
-- FUZZ_AVOID_KNOWN=1 steers around them.
local quench = require "quench"

local SEED = tonumber(os.getenv("FUZZ_SEED") or "1") // 1
local CALLS = tonumber(os.getenv("FUZZ_CALLS")
  or (os.getenv("QUENCH_UNDER_VALGRIND") == "1" and "20000" or "100000")) // 1
local KNOWN = os.getenv("FUZZ_AVOID_KNOWN") ~= "1"   -- bugs 2, 4, 5, 8 are fixed: walk into them
local BATCH = 200          -- calls per worker task
local HANG = 30            -- virtual seconds a batch may take before it is aborted

local pack, unpack = table.pack, table.unpack

local function new_rng(seed)
  local x = (seed * 0x9E3779B97F4A7C15) ~ 0x2545F4914F6CDD1D
  if x == 0 then x = 1 end
  local r = {}
  function r.int(a, b)
    if b == nil then a, b = 1, a end
    x = x ~ (x << 13); x = x ~ (x >> 7); x = x ~ (x << 17)
    return a + (x >> 1) % (b - a + 1)
  end
  function r.chance(p) return r.int(1, 1000000) <= p * 1000000 end
  function r.pick(t) return t[r.int(1, #t)] end
  return r
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) == "string" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  return keys
end

-- A pool of objects by type name, filled from every constructor.
local function type_name(v)
  local mt = getmetatable(v)
  if type(mt) == "table" then
    if type(mt.__name) == "string" then return mt.__name end
    if mt.__index == mt then   -- Lua-side classes (scope, task set)
      if rawget(mt, "join_next") then return "quench.task_set" end
      if rawget(mt, "spawn") then return "quench.scope" end
    end
    if mt.__close and type(v) == "userdata" then return "quench.guard?" end
  end
  return type(v)
end

local Fuzz = {}
Fuzz.__index = Fuzz

local function new_fuzz(seed)
  local f = setmetatable({ r = new_rng(seed), pool = {}, by_type = {}, fns = {}, seen = {},
    calls = 0, errors = 0, results = 0, hangs = 0, depth = 0, types = {}, queued = {}, graveyard = {} }, Fuzz)
  f.undepth = setmetatable({}, { __close = function() f.depth = f.depth - 1 end })
  return f
end

function Fuzz:add(v)
  if v == nil or self.forbidden[v] then return end
  local t = type(v)
  if t ~= "userdata" and t ~= "table" then return end
  if t == "table" and getmetatable(v) == nil then return end
  -- Known bug 8 (docs/how-quench-is-tested.md): a quench object used after its own __gc
  -- ran (resurrected by a finalizer, as the queued calls below do) leaks.
  -- Unless KNOWN=1, every object met stays referenced until the end.
  if not KNOWN then self.graveyard[#self.graveyard + 1] = v end
  local tn = type_name(v)
  local list = self.by_type[tn]
  if not list then
    list = {}
    self.by_type[tn] = list
    self.types[#self.types + 1] = tn
    table.sort(self.types)
  end
  if #list < 12 then list[#list + 1] = v else list[self.r.int(1, #list)] = v end
  if #self.pool < 400 then self.pool[#self.pool + 1] = v else self.pool[self.r.int(1, #self.pool)] = v end
  self:learn(v)
end

-- The running thread, when it is a task's or a branch's (not main's: closing
-- it would end the run), for the coroutine functions below.
function Fuzz:add_thread()
  local co, cur = coroutine.running(), quench.current()
  if cur == nil or cur == self.main or not coroutine.isyieldable() then return end
  local list = self.by_type.thread
  if not list then
    list = {}
    self.by_type.thread = list
    self.types[#self.types + 1] = "thread"
    table.sort(self.types)
  end
  if #list < 12 then list[#list + 1] = co else list[self.r.int(1, #list)] = co end
end

-- Methods and metamethods of an object's metatable, once per metatable.
function Fuzz:learn(v)
  local mt = getmetatable(v)
  if type(mt) ~= "table" or self.seen[mt] then return end
  self.seen[mt] = true
  local tn = type_name(v)
  if type(mt.__index) == "table" then
    for _, k in ipairs(sorted_keys(mt.__index)) do
      local fn = mt.__index[k]
      if type(fn) == "function" and not k:match("^_") then
        self.fns[#self.fns + 1] = { name = tn .. ":" .. k, fn = fn, self_type = tn }
      end
    end
  end
  for _, k in ipairs({ "__close", "__tostring", "__gc" }) do
    local fn = rawget(mt, k)
    if type(fn) == "function" and (k ~= "__gc" or KNOWN) then
      self.fns[#self.fns + 1] = { name = tn .. "." .. k, fn = fn, self_type = tn,
        meta = k, strict = not KNOWN }
    end
  end
  table.sort(self.fns, function(a, b) return a.name < b.name end)
end

local NAN = 0 / 0
local SCALARS = {
  false, true, 0, 1, 2, 3, -1, 0.5, 1e-9, -0.0, 7.25, 1e308, -1e308, math.huge, -math.huge,
  NAN, math.maxinteger, math.mininteger, 2 ^ 53, 2 ^ 63, 1 << 62, 1 << 30, (1 << 30) + 1,
  "", "x", "SIGINT", "SIGUSR1", "SIGWINCH", "real", "virtual", "manual",
  string.rep("ab", 500), "\0",
}

-- Functions handed to quench as arguments (task bodies, branches, cleanups).
function Fuzz:make_functions()
  local f = self
  local fns = {
    function() end,
    function(...) return ... end,
    function() error("fuzz error", 0) end,
    function() error({ fuzz = true }) end,
    function() quench.sleep(0.25) return 1, nil, 3 end,
    function() quench.yield() end,
    function() quench.sleep(1e9) end,                 -- blocks (virtually) forever
    function() coroutine.yield("bare") end,
    function() local c = quench.current(); if c and c ~= f.main then c:abort("self") end quench.yield() end,
    function() local c = quench.current(); if c and c ~= f.main then c:cancel("self") end quench.yield() end,
    function() return quench.shield(quench.sleep, 0.5) end,
    function()   -- a guard's function cannot wait (known bug 4): unless KNOWN, it does not try
      local _ <close> = quench.guard(function()
        if KNOWN then f:call_random("close") else pcall(coroutine.wrap(f.call_random), f, "close") end
      end)
      quench.sleep(0.5)
    end,
    function(...) return f:call_random("nested", ...) end,
    function() quench.defer(function() f:call_random("defer") end); quench.sleep(0.1) end,
    function() for _ = 1, 3 do f:call_random("loop") end end,
    function(a)  -- deep nesting (past Lua's C-call limit of ~200 nested resumes):
      -- selects or timeouts 250-400 levels deep around a random call
      local function nest(n)
        if n == 0 then return f:call_random("deep", a) end
        if n % 2 == 0 then return quench.select(function() return nest(n - 1) end, quench.sleep_op(5)) end
        return quench.timeout(5, nest, n - 1)
      end
      return nest(f.r.int(250, 400))
    end,
    function()   -- more ready awaits than the cooperative budget: one of them gives way
      local ch = quench.channel()
      for i = 1, 300 do ch:send(i); assert(ch:recv() == i) end
    end,
    function(a)  -- the same op twice in one select (refused), or an op with itself in a timeout
      local ops = f.by_type["quench.op"]
      local op = ops and f.r.pick(ops) or a
      if f.r.chance(0.5) then return quench.select(op, op) end
      return quench.select_biased(function() end, op, op)
    end,
    function() f:add_thread() quench.sleep(0.5) return 1 end,
    function() f:add_thread() quench.sleep(1e9) end,
    function(...) f:add_thread() return f:call_random("nested", ...) end,
  }
  -- Known bug 4: a wait where the coroutine cannot yield (a guard's
  -- function, a finalizer, a C callback) leaves a stale op behind. Unless
  -- KNOWN=1, these functions return at once there, as a careful user
  -- would have to.
  if not KNOWN then
    for i, fn in ipairs(fns) do
      if i > 4 then
        fns[i] = function(...)
          if not coroutine.isyieldable() then return end
          return fn(...)
        end
      end
    end
  end
  self.functions = fns
end

function Fuzz:value()
  local r = self.r
  local k = r.int(1, 10)
  if k <= 3 then return r.pick(SCALARS) end
  if k <= 5 then return r.pick(self.functions) end
  if k <= 9 and #self.pool > 0 then return r.pick(self.pool) end
  if k == 10 then
    local t = {}
    for _ = 1, r.int(0, 3) do
      local key = r.pick({ "clock", "seed", "grace", "on_task_error", "on_warning", "slow_task", 1, 2 })
      t[key] = self:value_shallow()
      if (key == "on_task_error" or key == "on_warning") and not KNOWN then
        t[key] = function() end   -- known bug 5: quench called from these crashes
      end
    end
    return t
  end
  return nil
end

function Fuzz:value_shallow()
  local r = self.r
  if r.chance(0.5) then return r.pick(SCALARS) end
  return r.pick(self.functions)
end

-- Arguments for fn: usually its own type first, then random values.
function Fuzz:args_for(entry)
  local r = self.r
  local args, n = {}, r.int(0, 4)
  local i0 = 1
  if entry.self_type and (entry.strict or r.chance(0.8)) then
    local list = self.by_type[entry.self_type]
    if list then
      args[1] = r.pick(list)
      i0 = 2
      n = math.max(n, 1)
    elseif entry.strict then
      return nil
    end
  end
  for i = i0, n do
    if r.chance(0.1) then
      args[i] = nil
    elseif i <= 2 and not entry.self_type and r.chance(0.5) then
      -- module functions mostly take (function, ...) or (seconds, function, ...)
      args[i] = (i == 1 and r.chance(0.5)) and r.pick({ 0, 0.5, 1, 2.5, -1 }) or r.pick(self.functions)
    else
      args[i] = self:value()
    end
  end
  return args, n
end

-- One random call: how it is called (direct, in a timeout, in a select
-- branch, in a shield, in a <close>, from a finalizer) is random too.
function Fuzz:call_random(where, ...)
  if self.depth >= 3 or #self.fns == 0 then return ... end
  self.depth = self.depth + 1
  local _depth <close> = self.undepth   -- also when the calling task is dropped
  local r = self.r
  local entry = r.pick(self.fns)
  local args, n = self:args_for(entry)
  if args then
    self.calls = self.calls + 1
    local how = r.int(1, 10)
    local res
    if how <= 5 or where ~= "worker" then
      res = pack(pcall(entry.fn, unpack(args, 1, n)))
    elseif how <= 7 then
      res = pack(pcall(quench.timeout, r.pick({ 0, 0.5, 3 }), entry.fn, unpack(args, 1, n)))
    elseif how == 8 then
      res = pack(pcall(quench.select, function() return entry.fn(unpack(args, 1, n)) end,
        quench.sleep_op(r.pick({ 0, 1 }))))
    elseif how == 9 then
      res = pack(pcall(function()
        local _ <close> = setmetatable({}, { __close = function() entry.fn(unpack(args, 1, n)) end })
        quench.sleep(0.1)
      end))
    else
      -- a finalizer that calls it, collected at some later allocation.
      -- Known bugs 4 and 5 (docs/how-quench-is-tested.md): an await where the coroutine
      -- cannot yield leaves a stale op behind, and quench called from a
      -- finalizer that runs on quench's private thread corrupts it. Unless
      -- KNOWN=1 the finalizer only queues the call for the worker.
      local fuzz = self
      setmetatable({}, { __gc = function()
        if KNOWN then pcall(entry.fn, unpack(args, 1, n))
        else fuzz.queued[#fuzz.queued + 1] = function() return entry.fn(unpack(args, 1, n)) end end
      end })
      res = pack(true)
    end
    entry.ok = (entry.ok or 0) + (res[1] and 1 or 0)
    entry.n = (entry.n or 0) + 1
    if res[1] then
      self.results = self.results + 1
      for i = 2, math.min(res.n, 6) do self:add(res[i]) end
    else
      self.errors = self.errors + 1
    end
    if r.chance(0.02) then collectgarbage("step", 50) end
  end
  return ...
end

-- Objects of every kind quench makes, in several states.
function Fuzz:seed_pool()
  local add = function(...) for i = 1, select("#", ...) do self:add((select(i, ...))) end end
  local q = quench
  add(q.channel(), q.channel(1), q.channel(3))
  local closed = q.channel(2); closed:try_send(1); closed:close(); add(closed)
  add(q.oneshot())
  local tx, rx = q.oneshot(); tx:send("v"); add(tx, rx)
  tx, rx = q.oneshot(); rx:close(); add(tx, rx)
  for _, name in ipairs({ "broadcast", "watch" }) do
    if q[name] then
      local b = q[name](name == "broadcast" and 2 or "init")
      add(b, b:subscribe())
      local b2 = q[name](name == "broadcast" and 1 or nil)
      add(b2:subscribe()); b2:close(); add(b2)
    end
  end
  local m = q.mutex(); add(m, m:try_lock(), m:lock_op())
  local rw = q.rwlock(); add(rw, rw:try_read(), rw:read_op(), rw:write_op())
  local s = q.semaphore(2); add(s, s:try_acquire(), s:acquire_op(2))
  local p = q.mutex():try_lock(); p:release(); add(p)
  local n = q.notify(); add(n, n:notified_op())
  add(q.barrier(2), q.barrier(1))
  local t = q.token(); local c = t:child(); add(t, c, c:child(), t:guard(), t:cancelled_op())
  local dead = q.token(); dead:cancel("gone"); add(dead, dead:child())
  add(q.guard(function() end), q.sleep_op(1), q.sleep_op(-1))
  local used = q.sleep_op(0); used:await(); add(used)
  add(q.cancelled_error("r"), q.cancelled_error())
  add(select(2, q.timeout(0, q.sleep, 1)))
  if q.signal_op then add(q.signal_op("SIGUSR2")) end
  -- task handles in every state
  local pending = q.spawn(function() end)
  local sleeping = q.spawn(q.sleep, 1e6)
  local ok_task = q.spawn(function() return 1 end)
  local failed = q.spawn(error, "boom")
  local cancelled = q.spawn(q.sleep, 10)
  q.yield()
  cancelled:abort("fuzz")
  ok_task:join(); failed:join()
  add(pending, sleeping, ok_task, failed, cancelled, sleeping:join_op())
  if q.task_set then
    local set = q.task_set(); set:spawn(q.sleep, 1); add(set)
  end
  if q.scope then
    q.scope(function(sc) add(sc) end)   -- an ended scope
  end
  for _, v in ipairs(self.foreign or {}) do add(v) end
  if q.tls and self.tls_pki then self:seed_tls(add) end
end

-- TLS objects: a server, an accepted stream whose peer never speaks TLS
-- (its handshake waits: calls on it drop handshakes), a client and a
-- server stream after their handshake, a closed one, a context.
function Fuzz:seed_tls(add)
  local q, pki = quench, self.tls_pki
  local srv = assert(q.tls.listen("127.0.0.1", 0, { certificate = pki.server.cert,
                                                    key = pki.server.key }))
  local _, port = srv:getsockname()
  local ctx = assert(q.tls.context({ cafile = pki.ca.cert }))
  local raw = assert(q.tcp.connect("127.0.0.1", port))
  local lazy = assert(srv:accept())
  local function server_side()
    return q.spawn(function()
      local s = assert(srv:accept())
      assert(s:handshake())
      return s
    end)
  end
  local t = server_side()
  local c = assert(q.tls.connect("localhost", port, { context = ctx }))
  local _, acc = t:join()
  t = server_side()
  local closed = assert(q.tls.connect("localhost", port, { verify = false }))
  local _, other = t:join()
  closed:close()
  add(srv, ctx, raw, lazy, c, acc, closed, other)
end

-- File and process calls get random strings too: make their path arguments
-- paths inside a private directory, so the fuzzer never touches the tree it
-- runs in (nor starts a program found on PATH).
local SANDBOX = os.tmpname()
os.remove(SANDBOX)
os.execute("mkdir -p '" .. SANDBOX .. "'")
local function sandboxed(fn)
  return function(...)
    local args = pack(...)
    for i = 1, math.min(args.n, 2) do   -- the path arguments (rename has two)
      local t = type(args[i])
      if t == "string" or t == "number" then
        args[i] = SANDBOX .. "/" .. tostring(args[i]):gsub("[/%.]", "_")
      end
    end
    return fn(unpack(args, 1, args.n))
  end
end

-- Everything callable on the module.
local function resume_from_wrap(co, ...)
  local args = pack(...)
  return coroutine.wrap(function() return coroutine.resume(co, unpack(args, 1, args.n)) end)()
end

function Fuzz:learn_coroutine()
  for _, e in ipairs({ { "coroutine.resume", coroutine.resume }, { "coroutine.close", coroutine.close },
                       { "coroutine.status", coroutine.status },
                       { "coroutine.resume from a wrap", resume_from_wrap } }) do
    self.fns[#self.fns + 1] = { name = e[1], fn = e[2], self_type = "thread", strict = true }
  end
end

function Fuzz:learn_module()
  for _, k in ipairs(sorted_keys(quench)) do
    local v = quench[k]
    -- quench.run is called by run_fuzz itself (nested: it raises; outside:
    -- always on the virtual clock, so that nothing can sleep for real)
    -- quench.stdin/stdout/stderr: the fuzzer would write noise into the
    -- test runner's own output (pipes are fuzzed through other objects)
    local stdio = k == "stdin" or k == "stdout" or k == "stderr"
    -- quench.adopt (and quench.tcp/unix.adopt) take over a descriptor by
    -- number: random numbers would take the test runner's own sockets
    if k ~= "run" and k ~= "adopt" and not stdio and type(v) == "function" then
      self.fns[#self.fns + 1] = { name = "quench." .. k, fn = v }
    elseif type(v) == "table" then   -- sub-modules (quench.tcp, quench.fs, ...)
      for _, k2 in ipairs(sorted_keys(v)) do
        local fn = v[k2]
        if type(fn) == "function" and k2 ~= "adopt" then
          if k == "fs" or k == "process" or k == "unix" then fn = sandboxed(fn) end
          self.fns[#self.fns + 1] = { name = "quench." .. k .. "." .. k2, fn = fn }
        end
      end
    end
  end
end

-- Objects made in a runtime that has ended, for use in a later one.
local function foreign_objects()
  local out = {}
  quench.run({ clock = "virtual", seed = 3 }, function()
    local h = quench.spawn(quench.sleep, 100)
    local done = quench.spawn(function() return 1 end)
    quench.yield()
    local ch = quench.channel(1)
    local recv_op = ch:recv_op()
    local m = quench.mutex()
    local permit = m:lock()
    local t = quench.token()
    out = { h, done, h:join_op(), ch, recv_op, m, permit, t, t:cancelled_op(), quench.sleep_op(1),
            quench.current() }
    if quench.scope then quench.scope(function(s) out[#out + 1] = s; s:spawn(quench.sleep, 1) end) end
  end)
  return out
end

local function run_fuzz(seed, calls)
  local f = new_fuzz(seed)
  f.foreign = foreign_objects()
  if quench.tls then f.tls_pki = require("helpers.tls_pki").make() end
  f:make_functions()
  f:learn_module()
  f:learn_coroutine()
  -- A fresh runtime every PER_RUN calls, or sooner when the fuzzed calls
  -- have pushed the virtual clock to its end (quench.sleep(1e300),
  -- quench.advance): then every timeout expires at once. The pool carries
  -- over, so objects of ended runtimes are used all along.
  local PER_RUN = 5000
  f.runtimes = 0
  while f.calls < calls do
    f.runtimes = f.runtimes + 1
    local stop_at = f.calls + PER_RUN
    -- A thread kept from an ended task is reused by later tasks (main's
    -- select branches too): a coroutine.close of it ends whatever runs on it
    -- then, main included, with an error that says so (docs/tasks.md).
    local ok, err = pcall(quench.run, { clock = "virtual", seed = seed + f.runtimes,
                 on_task_error = function() end, on_warning = function() end }, function()
      f.main = quench.current()
      f.forbidden = setmetatable({ [f.main] = true }, { __mode = "k" })
      if f.runtimes == 1 then f:seed_pool() end
      local rounds = 0
      while f.calls < math.min(calls, stop_at) and rounds < PER_RUN and quench.now() < 1e8 do
        rounds = rounds + 1   -- a worker that aborts itself at once still ends the loop
        local worker = quench.spawn(function()
          for _ = 1, BATCH do
            f:call_random("worker")
            local q = table.remove(f.queued)
            if q then f.calls = f.calls + 1; pcall(q) end
          end
          f:call_random("worker", pcall(quench.run, { clock = "virtual" }, f:value()))
        end)
        local ok = quench.timeout(HANG, worker.join, worker)
        if not ok then
          f.hangs = f.hangs + 1
          worker:abort("hung")
        end
      end
    end)
    if not ok then
      if not tostring(err):find("was closed by coroutine.close()", 1, true) then error(err, 0) end
      f.main_closed = (f.main_closed or 0) + 1
    end
  end
  -- outside any runtime: everything again, a little
  f.main = nil
  f.forbidden = setmetatable({}, { __mode = "k" })
  for _ = 1, math.min(2000, calls // 10) do
    f:call_random("outside")
    local opts = f:value()
    if type(opts) ~= "table" then opts = {} end
    opts.clock = "virtual"
    f.calls = f.calls + 1
    local main, arg = f:value(), f:value()
    if type(main) == "function" then
      -- a main waiting on what no clock ends (a signal) would wait forever:
      -- bound it as the workers are
      local fn = main
      main = function(...) return quench.timeout(HANG, fn, ...) end
    end
    pcall(quench.run, opts, main, arg)
  end
  f.queued, f.graveyard, f.pool, f.by_type = {}, {}, {}, {}
  if f.tls_pki then require("helpers.tls_pki").remove(f.tls_pki) end
  collectgarbage()
  collectgarbage()
  return f
end

describe("API fuzzing", function()
  teardown(function() os.execute("rm -rf '" .. SANDBOX .. "'") end)

  it(string.format("survives %d random calls (seed %d)", CALLS, SEED), function()
    local t0 = os.clock()
    local f = run_fuzz(SEED, CALLS)
    local names = {}
    for _, e in ipairs(f.fns) do names[#names + 1] = e.name end
    print(string.format("\napi fuzz: %d calls of %d functions/methods over %d object types "
      .. "in %d runtimes (%d results, %d errors, %d batches hung and were aborted, "
      .. "%d runs ended by a close of a thread main had) in %.1f s CPU",
      f.calls, #f.fns, #f.types, f.runtimes, f.results, f.errors, f.hangs, f.main_closed or 0,
      os.clock() - t0))
    if os.getenv("FUZZ_VERBOSE") then
      for _, e in ipairs(f.fns) do
        print(string.format("  %-40s %6d calls %6d ok", e.name, e.n or 0, e.ok or 0))
      end
    end
    assert.is_true(f.calls >= CALLS)
    assert.is_true(#f.fns > 60, "too few functions found: " .. table.concat(names, " "))
  end)

  -- known bug 5 (docs/how-quench-is-tested.md): a finalizer run by an allocation on
  -- quench's private thread corrupts it when it calls quench
  local known = KNOWN and it or pending
  known("can call a task's methods from __gc during a collection inside quench", function()
    local n = 0
    quench.run({ clock = "virtual", seed = 7 }, function()
      local hs = {}
      for i = 1, 50 do hs[i] = quench.spawn(quench.sleep, i) end
      for i = 1, 2000 do
        setmetatable({}, { __gc = function()
          n = n + 1
          local h = hs[(i % 50) + 1]
          pcall(h.abort, h, "gc")
          pcall(quench.spawn, function() end)
          pcall(quench.channel(1).try_send, quench.channel(1), i)
        end })
        if i % 100 == 0 then quench.yield() end
      end
      collectgarbage()
    end)
    assert.is_true(n > 0)
  end)
end)
