-- Allocation failures of the core, end to end (issue 7): quench.run's
-- fail_alloc = k makes the core's k-th allocation fail; every such failure
-- must surface as a Lua error saying "out of memory" (raised by run, or
-- reported to on_task_error), never as a crash, a hang, another error or a
-- leak. docs/how-quench-is-tested.md, "Allocation failures".
local quench = require "quench"

-- Does this error (or every error a `multiple` holds) say "out of memory"?
local function is_oom(e)
  if type(e) == "table" and e.kind == "multiple" then
    for _, sub in ipairs(e.errors) do
      if not is_oom(sub) then return false end
    end
    return #e.errors > 0
  end
  return tostring(e):find("out of memory", 1, true) ~= nil
end

-- A scenario that makes many kinds of core futures. Every task that talks
-- to another is a child of one scope, so the first failure cancels the rest
-- and is raised; a join that sees an "out of memory" raises it again. A
-- wrong value raises an error without "out of memory" (the spec fails).
local function scenario()
  local log = {}
  local function check(cond, what)
    if not cond then error("scenario: " .. what, 2) end
  end
  local function join(h)
    local r = table.pack(h:join())
    if not r[1] and is_oom(r[2]) then error(r[2], 0) end
    return table.unpack(r, 1, r.n)
  end
  quench.scope(function(s)
    -- spawn / join, sleep, abort, h:stop
    s:spawn(function()
      local h = quench.spawn(function(x) quench.sleep(1); return x * 2 end, 21)
      local ok, v = join(h)
      check(ok and v == 42, "join")
      local slow = quench.spawn(quench.sleep, 100)
      local stopped = quench.spawn(function()
        local ok2, e = pcall(quench.sleep, 100)
        if not ok2 and is_oom(e) then error(e, 0) end
        check(not ok2 and quench.is_cancelled(e), "stop: cancel first")
        error(e, 0)
      end)
      quench.sleep(0.5)
      slow:abort("bye")
      check(select(2, join(slow)).kind == "cancelled", "abort")
      check(not join(stopped), "stop")
      log[#log + 1] = "tasks"
    end)
    -- channels: a bounded producer/consumer, send_op and recv_op in selects
    s:spawn(function()
      local ch = quench.channel(2)
      local producer = s:spawn(function()
        for i = 1, 12 do
          if i % 3 == 0 then
            local w = quench.select(ch:send_op(i), quench.sleep_op(50))
            check(w == 1, "send_op lost to a long sleep")
          else
            check(ch:send(i), "send")
          end
          if i % 4 == 0 then quench.sleep(0.25) end
        end
        ch:close()
      end)
      local got = {}
      while true do
        local w, v = quench.select(ch:recv_op(), quench.sleep_op(100))
        check(w == 1, "recv_op lost to a long sleep")
        if v == nil then break end
        got[#got + 1] = v
      end
      check(#got == 12 and got[12] == 12, "received " .. #got .. " values")
      check(join(producer), "producer")
      local unbounded = quench.channel()
      for i = 1, 20 do check(unbounded:try_send(i), "try_send") end
      for i = 1, 20 do check(unbounded:recv() == i, "unbounded order") end
      local tx, rx = quench.oneshot()
      s:spawn(function() quench.sleep(1); tx:send("one") end)
      check(rx:recv() == "one", "oneshot")
      log[#log + 1] = "channels"
    end)
    -- timeout, deadline, select over function branches
    s:spawn(function()
      local ok, e = quench.timeout(1, quench.sleep, 5)
      check(not ok and quench.is_timeout(e), "timeout expires")
      check(quench.timeout(5, quench.sleep, 1), "timeout in time")
      check(quench.deadline(quench.now() + 2, quench.sleep, 1), "deadline")
      local w, v = quench.select(function() quench.sleep(2); return "slow" end,
                                 function() quench.sleep(1); return "fast" end)
      check(w == 2 and v == "fast", "select")
      check(quench.select_biased(quench.sleep_op(1), quench.sleep_op(1)) == 1, "biased")
      log[#log + 1] = "time"
    end)
    -- mutex, rwlock, semaphore, notify, barrier
    s:spawn(function()
      local m, sem, n = quench.mutex(), quench.semaphore(2), quench.notify()
      local rw, b = quench.rwlock(), quench.barrier(3)
      local inside, most = 0, 0
      local workers = {}
      for i = 1, 4 do
        workers[i] = s:spawn(function()
          do
            local _g <close> = m:lock()
            quench.sleep(0.1)
          end
          do
            local _p <close> = sem:acquire()
            inside = inside + 1
            most = math.max(most, inside)
            quench.sleep(0.2)
            inside = inside - 1
          end
          do
            local _r <close> = (i % 2 == 0) and rw:write() or rw:read()
            quench.sleep(0.1)
          end
          if i <= 3 then b:wait() end
          n:notified()
        end)
      end
      quench.sleep(5)
      for _ = 1, 4 do n:notify_one() end
      for i = 1, 4 do check(join(workers[i]), "worker " .. i) end
      check(most == 2, "semaphore held by " .. most)
      log[#log + 1] = "sync"
    end)
    -- tokens, watch, broadcast
    s:spawn(function()
      local t = quench.token()
      local child = t:child()
      local waiter = t:spawn(function() quench.sleep(100) end)
      local seen = s:spawn(function() return child:cancelled() end)
      check(t:run(quench.sleep, 1), "token run")
      quench.sleep(1)
      t:cancel("done")
      check(join(seen), "cancelled seen")
      local ok2, e = join(waiter)
      check(not ok2 and quench.is_cancelled(e), "token spawn")
      local w = quench.watch(0)
      local wrx = w:subscribe()
      local b = quench.broadcast(4)
      local brx = b:subscribe()
      local watcher = s:spawn(function()
        local last
        repeat
          wrx:changed()
          last = wrx:get()
        until last == 3
        local got = {}
        for _ = 1, 3 do got[#got + 1] = brx:recv() end
        return last, #got
      end)
      for i = 1, 3 do
        quench.sleep(0.5)
        w:send(i)
        b:send(i)
      end
      local okw, last, nb = join(watcher)
      check(okw and last == 3 and nb == 3, "watch and broadcast")
      log[#log + 1] = "signals"
    end)
    -- every kind of op in a select; task sets, nested scopes, cancel and shield
    s:spawn(function()
      local m, sem, n, b = quench.mutex(), quench.semaphore(1), quench.notify(), quench.barrier(2)
      local t, w = quench.token(), quench.watch(0)
      local wrx, bc = w:subscribe(), quench.broadcast(2)
      local brx = bc:subscribe()
      local tx, rx = quench.oneshot()
      local h = s:spawn(quench.sleep, 3.5)
      local held = {}
      local poker = s:spawn(function()
        held[1], held[2] = m:lock(), sem:acquire()
        for i = 1, 8 do
          quench.sleep(1)
          if i == 1 then n:notify_one()
          elseif i == 2 then b:wait()
          elseif i == 3 then t:cancel("x")
          elseif i == 4 then w:send(1)
          elseif i == 5 then bc:send("b")
          elseif i == 6 then tx:send("o")
          elseif i == 7 then held[1]:release()
          else held[2]:release()
          end
        end
      end)
      quench.yield()                      -- the poker holds the lock and the permit
      local makers = {
        function() return m:lock_op() end, function() return sem:acquire_op() end,
        function() return n:notified_op() end, function() return b:wait_op() end,
        function() return t:cancelled_op() end, function() return wrx:changed_op() end,
        function() return brx:recv_op() end, function() return rx:recv_op() end,
        function() return h:join_op() end,
      }
      local fired = {}
      for _ = 1, #makers do
        local ops, which = {}, {}
        for i, make in ipairs(makers) do
          if not fired[i] then
            ops[#ops + 1] = make()
            which[#ops] = i
          end
        end
        ops[#ops + 1] = quench.sleep_op(30)
        local r = table.pack(quench.select(table.unpack(ops)))
        check(r[1] < #ops, "a select over ops lost to a long sleep")
        local i = which[r[1]]
        fired[i] = true
        if i <= 2 then r[2]:release() end
      end
      check(join(poker), "poker")
      local set = quench.task_set()
      for i = 1, 3 do set:spawn(function() quench.sleep(i / 10); return i end) end
      local sum = 0
      while set:len() > 0 do
        local _, ok, v = set:join_next()
        if not ok and is_oom(v) then error(v, 0) end
        check(ok, "set child")
        sum = sum + v
      end
      check(sum == 6, "task set")
      local okj, ej = quench.try_join(function() quench.sleep(1) end, function() quench.yield() end)
      if not okj and is_oom(ej) then error(ej, 0) end
      check(okj, "try_join")
      local inner = quench.scope(function(s2)
        s2:spawn(quench.sleep, 1)
        local graceful = s2:spawn(function()
          local ok, e = pcall(quench.sleep, 10)
          if not ok and is_oom(e) then error(e, 0) end
          check(not ok and quench.is_cancelled(e), "cancel")
          quench.shield(quench.sleep, 0.5)  -- async cleanup, then a normal end
        end)
        quench.sleep(0.5)
        graceful:cancel("stop")
        return "inner"
      end)
      check(inner == "inner", "nested scope")
      log[#log + 1] = "ops"
    end)
  end)
  return log
end

local function live_after_gc()
  collectgarbage()
  collectgarbage()
  return quench.stats().live_blocks
end

-- I/O: files, TCP, UDP, DNS, a process with a pipe, the blocking pool. An
-- I/O call reports the core's out of memory the I/O way (nil,
-- "ENOMEM: out of memory", "ENOMEM"): `must` raises that message. Threads
-- and the kernel decide some orders here, so the count of allocations may
-- differ a little from run to run.
local function io_scenario(dir)
  local log = {}
  local function must(v, msg, ...)
    if v == nil and msg ~= nil then error("scenario: " .. msg, 2) end
    return v, msg, ...
  end
  local function check(cond, what)
    if not cond then error("scenario: " .. what, 2) end
  end
  local fs = quench.fs
  quench.scope(function(s)
    s:spawn(function()
      local path = dir .. "/a.txt"
      must(fs.write_file(path, "hello\n"))
      check(must(fs.read_file(path)) == "hello\n", "read_file")
      local f <close> = must(fs.open(path, "a"))
      must(f:write("more\n"))
      must(f:close())
      local g <close> = must(fs.open(path))
      check(must(g:read(100)) == "hello\nmore\n", "read")
      check(must(g:stat()).size == 11, "stat")
      must(g:close())
      check(#must(fs.readdir(dir)) == 1, "readdir")
      must(fs.rename(path, path .. ".old"))
      must(fs.unlink(path .. ".old"))
      log[#log + 1] = "fs"
    end)
    s:spawn(function()
      local srv = must(quench.tcp.listen("127.0.0.1", 0))   -- the runtime's end closes it
      local _, port = srv:getsockname()
      s:spawn(function()
        local _srv <close> = srv
        local c <close> = must(srv:accept())
        local line = must(c:read("l"))
        must(c:write(line:upper(), "\n"))
      end)
      local conn <close> = must(quench.tcp.connect("127.0.0.1", port))
      must(conn:write("ping\n"))
      check(must(conn:read("l")) == "PING", "tcp echo")
      local a <close> = must(quench.udp.bind("127.0.0.1", 0))
      local b <close> = must(quench.udp.bind("127.0.0.1", 0))
      local _, bport = b:getsockname()
      must(a:send("dgram", "127.0.0.1", bport))
      check(must(b:recv()) == "dgram", "udp")
      check(#must(quench.dns.getaddrinfo("127.0.0.1")) >= 1, "getaddrinfo")
      log[#log + 1] = "net"
    end)
    s:spawn(function()
      local p <close> = must(quench.process.spawn("sh", { args = { "-c", "echo hi" }, stdout = "pipe" }))
      check(must(p.stdout:read("l")) == "hi", "pipe")
      check(p:wait() == 0, "exit status")
      check(quench.blocking(function(x) return x + 1 end, 41) == 42, "blocking")
      log[#log + 1] = "process"
    end)
  end)
  return log
end

local function run_with(fail_alloc, main, ...)
  local reports = {}
  local ok, res = pcall(quench.run, {
    clock = "virtual", seed = 1, fail_alloc = fail_alloc,
    on_task_error = function(err) reports[#reports + 1] = err end,
  }, main or scenario, ...)
  return ok, res, reports
end

-- Run main with each of its allocations failing in turn (and a few past
-- the end, where nothing fails); check every run. Returns the count of
-- allocations of the clean run, and how many runs raised.
local function fail_each(main, ...)
  local base = live_after_gc()
  -- fail_alloc turns the core's cache of small blocks off (every allocation
  -- can then fail): count with it set too, past the end
  local ok, log, reports = run_with(math.maxinteger, main, ...)
  assert.is_true(ok, tostring(log))
  assert.are.same({}, reports)
  local total = quench.stats().allocs
  assert.are.equal(base, live_after_gc())
  local raised = 0
  for k = 1, total + 3 do
    local okk, err, reps = run_with(k, main, ...)
    local what = "fail_alloc = " .. k .. "/" .. total .. ": "
    if not okk then
      raised = raised + 1
      assert.is_true(is_oom(err), what .. "raised " .. tostring(err))
    end
    for _, e in ipairs(reps) do
      assert.is_true(is_oom(e), what .. "reported " .. tostring(e))
    end
    assert.are.equal(base, live_after_gc(), what .. "core blocks left")
  end
  return total, raised, log
end

describe("allocation failures of the core", function()
  it("each allocation of a scenario fails once: an 'out of memory' error, nothing else",
    function()
      local total, raised, log = fail_each(scenario)
      table.sort(log)
      assert.are.same({ "channels", "ops", "signals", "sync", "tasks", "time" }, log)
      assert.is_true(total > 200, "only " .. total .. " allocations")
      if os.getenv("ALLOC_FAIL_VERBOSE") then
        print(("alloc_fail_spec: scenario: %d allocations, %d runs raised out of memory")
          :format(total, raised))
      end
      assert.is_true(raised >= total - 1, raised .. " of " .. total .. " raised")
    end)

  it("each allocation of an I/O scenario fails once: an 'out of memory' error, nothing else",
    function()
      local dir = os.tmpname()
      os.remove(dir)
      assert(quench.run(function() return quench.fs.mkdir(dir) end))
      local total, raised, log = fail_each(function()
        for _, name in ipairs(quench.fs.readdir(dir) or {}) do   -- a failed run's leftovers
          quench.fs.unlink(dir .. "/" .. (name.name or name))
        end
        return io_scenario(dir)
      end)
      quench.run(function() return quench.fs.rmdir(dir) end)
      table.sort(log)
      assert.are.same({ "fs", "net", "process" }, log)
      if os.getenv("ALLOC_FAIL_VERBOSE") then
        print(("alloc_fail_spec: I/O scenario: %d allocations, %d runs raised out of memory")
          :format(total, raised))
      end
      assert.is_true(raised > total / 2, raised .. " of " .. total .. " raised")
    end)

  it("each allocation of a TLS scenario fails once: an 'out of memory' error, nothing else",
    function()
      local tls_pki = require "helpers.tls_pki"
      local pki = tls_pki.make()
      -- contexts are OpenSSL's memory, made once: the runs count quench's
      local server_ctx = assert(quench.tls.context({ server = true,
        certificate = pki.server.cert, key = pki.server.key }))
      local client_ctx = assert(quench.tls.context({ cafile = pki.ca.cert }))
      local function must(v, msg, ...)
        if v == nil and msg ~= nil then error("scenario: " .. msg, 2) end
        return v, msg, ...
      end
      local total, raised, log = fail_each(function()
        local log = {}
        quench.scope(function(s)
          local srv = must(quench.tls.listen("127.0.0.1", 0, { context = server_ctx }))
          local _, port = srv:getsockname()
          s:spawn(function()
            local _srv <close> = srv
            local c <close> = must(srv:accept())
            local line = must(c:read("l"))
            must(c:write(line:upper(), "\n", string.rep("x", 100000)))
            must(c:shutdown())
          end)
          local conn <close> = must(quench.tls.connect("localhost", port, { context = client_ctx }))
          must(conn:write("ping\n"))
          if must(conn:read("l")) ~= "PING" then error("scenario: tls echo") end
          if #must(conn:read("a")) ~= 100000 then error("scenario: tls bulk") end
          log[#log + 1] = "tls"
        end)
        return log
      end)
      tls_pki.remove(pki)
      assert.are.same({ "tls" }, log)
      if os.getenv("ALLOC_FAIL_VERBOSE") then
        print(("alloc_fail_spec: TLS scenario: %d allocations, %d runs raised out of memory")
          :format(total, raised))
      end
      assert.is_true(raised > total / 2, raised .. " of " .. total .. " raised")
    end)

  it("the first allocation is the runtime's own", function()
    local ok, err = pcall(quench.run, { fail_alloc = 1 }, function() end)
    assert.is_false(ok)
    assert.matches("quench.run: out of memory", err, 1, true)
  end)

  it("quench.stats counts the core's allocations and live blocks", function()
    quench.run({ clock = "virtual" }, function()
      local before = quench.stats()
      assert.is_true(before.allocs >= 1 and before.live_blocks >= 0)
      local hs = {}
      for i = 1, 10 do hs[i] = quench.spawn(quench.sleep, 1) end
      quench.yield()                      -- ten sleeps and a heap array
      local during = quench.stats()
      assert.is_true(during.allocs >= before.allocs + 11)
      assert.is_true(during.live_blocks >= before.live_blocks + 11)
      for i = 1, 10 do hs[i]:join() end
    end)
    local after = quench.stats()          -- outside a run: the last runtime's
    assert.are.same({ "allocs", "arena_bytes", "live_blocks" }, (function()
      local keys = {}
      for k in pairs(after) do keys[#keys + 1] = k end
      table.sort(keys)
      return keys
    end)())
    assert.is_true(after.allocs >= 12)
  end)

  it("bad fail_alloc values raise a clear error", function()
    for _, v in ipairs({ 0, -1, 1.5, "3", true, {} }) do
      local ok, err = pcall(quench.run, { fail_alloc = v }, function() end)
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'quench.run' (opts.fail_alloc must be a positive integer", err,
        1, true)
    end
    local ok, err = pcall(quench.test(function() end, { fail_alloc = 0 }))
    assert.is_false(ok)
    assert.matches("opts.fail_alloc must be a positive integer", err, 1, true)
  end)
end)
