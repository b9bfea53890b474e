-- Structured concurrency, shutdown and introspection: scopes, task sets,
-- join_all / try_join, signals, quench.tasks / stats, slow-task warnings.
local quench = require "quench"
local T = quench.test

local function closer(log, name)
  return setmetatable({}, { __close = function() log[#log + 1] = name end })
end

describe("scope", function()
  it("returns only when every child has ended, with the body's results", T(function()
    local ended = {}
    local r = quench.scope(function(s)
      s:spawn(function() quench.sleep(2); ended[#ended + 1] = "slow" end)
      s:spawn(function() quench.sleep(1); ended[#ended + 1] = "fast" end)
      return "body"
    end)
    assert.are.equal("body", r)
    assert.are.same({ "fast", "slow" }, ended)
    assert.are.equal(2, quench.now())
  end))

  it("the first child error cancels the siblings and is raised from scope", T(function()
    local log = {}
    local e = { "child error" }
    local ok, err = pcall(quench.scope, function(s)
      s:spawn(function() quench.sleep(1); error(e) end)
      s:spawn(function()
        local cancelled = not pcall(quench.sleep, 100)
        quench.shield(quench.sleep, 1)       -- async cleanup in the grace period
        log[#log + 1] = "sibling cancelled=" .. tostring(cancelled)
      end)
      quench.sleep(100)
      log[#log + 1] = "body not dropped"
    end)
    assert.is_false(ok)
    assert.are.equal(e, err)
    assert.are.same({ "sibling cancelled=true" }, log)
    assert.are.equal(2, quench.now())
  end))

  it("several failures are raised together, the first one first", T(function()
    local ok, err = pcall(quench.scope, function(s)
      s:spawn(function() quench.sleep(1); error("a", 0) end)
      s:spawn(function() quench.shield(quench.sleep, 1); error("b", 0) end)
    end)
    assert.is_false(ok)
    assert.are.equal("multiple", err.kind)
    assert.are.same({ "a", "b" }, err.errors)
    assert.are.equal("a", err.error)
    assert.is_false(quench.is_cancelled(err))
    assert.is_false(quench.is_timeout(err))
    assert.are.equal("multiple: 2 tasks failed; the first: a", tostring(err))
  end))

  it("aborts children that outlive the grace period", T(function()
    local log = {}
    pcall(quench.scope, { grace = 3 }, function(s)
      s:spawn(function()
        local _ <close> = closer(log, "stubborn dropped")
        quench.shield(quench.sleep, 100)
      end)
      s:spawn(function() quench.sleep(1); error("boom", 0) end)
    end)
    assert.are.same({ "stubborn dropped" }, log)
    assert.are.equal(4, quench.now())
  end))

  it("s:cancel ends the scope early: body dropped, children cancelled", T(function()
    local log = {}
    local r = table.pack(quench.scope(function(s)
      local _ <close> = closer(log, "body dropped")
      s:spawn(function()
        local ok = pcall(quench.sleep, 100)
        log[#log + 1] = "child cancelled=" .. tostring(not ok)
      end)
      s:spawn(function() quench.sleep(1); s:cancel("enough") end)
      quench.sleep(100)
    end))
    assert.are.equal(0, r.n)
    table.sort(log)
    assert.are.same({ "body dropped", "child cancelled=true" }, log)
    assert.are.equal(1, quench.now())
  end))

  it("gives children the scope's token", T(function()
    local seen
    quench.scope(function(s)
      s:spawn(function()
        pcall(quench.sleep, 100)               -- the token's cancel reaches the child...
        seen = s.token:reason()                -- ...and the child can read it there
      end)
      quench.sleep(1)
      s:cancel("via token")
    end)
    assert.are.equal("via token", seen)
  end))

  it("cancelling the task running the scope cancels the children", T(function()
    local log = {}
    local h = quench.spawn(function()
      quench.scope(function(s)
        s:spawn(function()
          local ok = pcall(quench.sleep, 100)
          log[#log + 1] = "child cancelled=" .. tostring(not ok)
        end)
        quench.sleep(100)
      end)
    end)
    quench.sleep(1)
    h:cancel("outer")
    local ok, err = h:join()
    assert.is_false(ok)
    assert.are.equal("outer", err.reason)
    assert.are.same({ "child cancelled=true" }, log)
  end))

  it("aborting the task running the scope aborts the children", T(function()
    local log = {}
    local h = quench.spawn(function()
      quench.scope(function(s)
        s:spawn(function()
          local _ <close> = closer(log, "child dropped")
          quench.sleep(100)
        end)
        quench.sleep(100)
      end)
    end)
    quench.sleep(1)
    h:abort()
    assert.are.same({ "child dropped" }, log)
  end))

  it("raises the error of a child's drop-time cleanup when the grace period ran out", T(function()
    local ok, err = pcall(quench.scope, { grace = 1 }, function(s)
      s:spawn(function()
        local _ <close> = setmetatable({}, { __close = function() error("cleanup broke", 0) end })
        quench.shield(quench.sleep, 100)
      end)
      quench.sleep(1)
      s:cancel("stop")
    end)
    assert.is_false(ok)
    assert.are.equal("cleanup broke", err)
  end))

  it("raises a child's error even when the task running it is cancelled", T(function()
    local h = quench.spawn(function()
      quench.scope(function(s)
        s:spawn(function()
          pcall(quench.sleep, 100)
          error("child failed while stopping", 0)
        end)
        quench.sleep(100)
      end)
    end)
    quench.sleep(1)
    h:cancel("outer")
    assert.are.same({ false, "child failed while stopping" }, { h:join() })
  end))

  it("siblings of a failed child see a readable reason", T(function()
    local reason
    pcall(quench.scope, function(s)
      s:spawn(function() quench.sleep(1); error("x", 0) end)
      s:spawn(function()
        local _, e = pcall(quench.sleep, 100)
        reason = tostring(e)
      end)
    end)
    assert.are.equal("cancelled: scope: a sibling task failed", reason)
  end))

  it("refuses spawns after it ended", T(function()
    local saved
    quench.scope(function(s) saved = s end)
    assert.has_error(function() saved:spawn(print) end, "quench.scope:spawn: the scope has ended")
  end))
end)

-- Lua heap growth per iteration, in bytes, of `round(n)` run twice after a
-- warm-up round (what stays reachable, measured after full collections).
local function growth_per(n, round)
  round(n)
  collectgarbage()
  collectgarbage()
  local before = collectgarbage("count")
  round(n)
  round(n)
  collectgarbage()
  collectgarbage()
  return (collectgarbage("count") - before) * 1024 / (2 * n)
end

describe("scope, cancelled while it waits for its children", function()
  it("passes a cancel of its task on to the children, and ends as cancelled", T(function()
    local seen
    local h = quench.spawn(function()
      return quench.scope(function(s)
        s:spawn(function()
          local _, err = pcall(quench.sleep, 100)
          seen = tostring(err)
        end)
        return "body done"                       -- the scope now waits for its child
      end)
    end)
    quench.sleep(1)
    h:cancel("shutdown")
    local ok, err = h:join()
    assert.is_false(ok)
    assert.is_true(quench.is_cancelled(err))
    assert.are.equal("shutdown", err.reason)
    assert.are.equal("cancelled: shutdown", seen)
    assert.are.equal(1, quench.now())
  end))

  it("gives them the grace period, then aborts them", T(function()
    local log = {}
    local h = quench.spawn(function()
      quench.scope({ grace = 2 }, function(s)
        s:spawn(function()
          local _ <close> = closer(log, "stubborn aborted")
          quench.shield(quench.sleep, 100)
        end)
        s:spawn(function()
          pcall(quench.sleep, 100)
          quench.shield(quench.sleep, 1)
          log[#log + 1] = "polite done"
        end)
      end)
    end)
    quench.sleep(1)
    h:cancel("shutdown")
    local ok, err = h:join()
    assert.is_false(ok)
    assert.are.equal("shutdown", err.reason)
    assert.are.same({ "polite done", "stubborn aborted" }, log)
    assert.are.equal(3, quench.now())
  end))

  it("s:cancel of an outer scope reaches grandchildren at once", T(function()
    local log = {}
    quench.scope({ grace = 10 }, function(s)
      s:spawn(function()
        quench.scope({ grace = 10 }, function(inner)
          inner:spawn(function()
            local _ <close> = closer(log, "grandchild ended")
            local _, err = pcall(quench.sleep, 100)
            log[#log + 1] = tostring(err)
          end)
        end)
      end)
      quench.sleep(1)
      s:cancel("stop")
    end)
    assert.are.same({ "cancelled: stop", "grandchild ended" }, log)
    assert.are.equal(1, quench.now())                -- not the inner scope's grace
  end))
end)

describe("scope and task set memory", function()
  it("a scope forgets its children once they have ended", T(function()
    quench.scope(function(s)
      local per_child = growth_per(2000, function(n)
        for _ = 1, n do s:spawn(function() return "result" end) end
        quench.yield()
        quench.yield()
      end)
      assert.is_true(per_child < 40, per_child .. " B per child")   -- kept every child: ~480
    end)
  end))

  it("a scope still raises the error of a child among many that ended well", T(function()
    local ok, err = pcall(quench.scope, function(s)
      for i = 1, 5000 do
        s:spawn(function()
          quench.sleep(1)
          if i == 4321 then error("one failed", 0) end
        end)
      end
    end)
    assert.is_false(ok)
    assert.are.equal("one failed", err)
  end))

  it("a scope raises the error of a child's defer, found when the child ends", T(function()
    local log = {}
    local ok, err = pcall(quench.scope, function(s)
      s:spawn(function()
        quench.defer(function() error("flush failed", 0) end)
        quench.sleep(1)
      end)
      s:spawn(function()
        local _, e = pcall(quench.sleep, 100)
        log[#log + 1] = tostring(e)
      end)
    end)
    assert.is_false(ok)
    assert.are.equal("flush failed", err)
    assert.are.same({ "cancelled: scope: a sibling task failed" }, log)
    assert.are.equal(1, quench.now())
  end))

  it("a scope dropped with failed children leaves their errors reported, not lost", function()
    local reported = {}
    quench.run({ clock = "virtual", on_task_error = function(err) reported[#reported + 1] = err end },
      function()
        local h = quench.spawn(function()
          quench.scope(function(s)
            s:spawn(function() error("first", 0) end)
            s:spawn(function()
              local _ <close> = setmetatable({}, { __close = function() error("close", 0) end })
              quench.shield(quench.sleep, 100)
            end)
            quench.sleep(100)
          end)
        end)
        quench.sleep(1)                              -- the scope waits out its grace period
        h:abort()                                    -- and is dropped meanwhile
      end)
    table.sort(reported)
    assert.are.same({ "close", "first" }, reported)
  end)

  it("a task set forgets tasks join_next returned", T(function()
    local set = quench.task_set()
    local per_task = growth_per(2000, function(n)
      for _ = 1, n do set:spawn(function() return "result" end) end
      for _ = 1, n do assert.is_true(select(2, set:join_next())) end
    end)
    assert.is_true(per_task < 40, per_task .. " B per task")
    assert.are.equal(0, set:len())
  end))

  it("a detaching task set keeps nothing of tasks that ended, and reports failures", function()
    local reported = {}
    quench.run({ clock = "virtual", on_task_error = function(err) reported[#reported + 1] = err end },
      function()
        local set <close> = quench.task_set({ detach = true })
        local per_task = growth_per(2000, function(n)
          for _ = 1, n do set:spawn(function() return "result" end) end
          quench.yield()
          quench.yield()
        end)
        assert.is_true(per_task < 40, per_task .. " B per task")    -- kept every task: ~370
        assert.are.equal(0, set:len())
        set:spawn(function() error("handler failed", 0) end)
        set:spawn(quench.sleep, 5)
        assert.are.equal(2, set:len())
        assert.is_nil(set:join_next())               -- waits until the set is empty
        assert.are.equal(5, quench.now())
        assert.are.equal(0, set:len())
      end)
    assert.are.same({ "handler failed" }, reported)
  end)
end)

describe("scope error values", function()
  it("a child raising nil or NaN gives the joiner that very value", T(function()
    local r = table.pack(pcall(quench.scope, function(s) s:spawn(error, nil) end))
    assert.are.same({ false, nil, n = 2 }, r)
    local ok, err = pcall(quench.scope, function(s) s:spawn(error, 0 / 0) end)
    assert.is_false(ok)
    assert.is_true(err ~= err)
    r = table.pack(pcall(quench.scope, function() error(nil) end))
    assert.are.same({ false, nil, n = 2 }, r)
  end))

  it("keeps every error of several when one's __tostring raises", T(function()
    local bad = setmetatable({}, { __tostring = function() error("tostring raised") end })
    local ok, err = pcall(quench.scope, function(s)
      s:spawn(function() error(bad) end)
      s:spawn(function() quench.shield(quench.yield); error(nil) end)
      s:spawn(function() quench.shield(quench.yield); error("c", 0) end)
    end)
    assert.is_false(ok)
    assert.are.equal("multiple", err.kind)
    assert.are.equal(3, err.n)
    assert.are.equal(bad, err.errors[1])
    assert.is_nil(err.errors[2])
    assert.are.equal("c", err.errors[3])
    assert.are.equal(bad, err.error)
    assert.are.equal("multiple: 3 tasks failed; the first: (table error whose __tostring failed)",
      tostring(err))
  end))
end)

describe("scope and task set misuse", function()
  it("names what is wrong with the arguments of quench.scope", T(function()
    local body = function() end
    assert.has_error(function() quench.scope(42) end,
      "bad argument #1 to 'scope' (function or options table expected, got number)")
    assert.has_error(function() quench.scope({}, 42) end,
      "bad argument #2 to 'scope' (function expected, got number)")
    assert.has_error(function() quench.scope({ grac = 1 }, body) end,
      "bad argument #1 to 'scope' (unknown option 'grac')")
    assert.has_error(function() quench.scope({ grace = "x" }, body) end,
      "bad argument #1 to 'scope' (opts.grace must be a number of seconds >= 0, got string)")
    assert.has_error(function() quench.scope({ grace = -1 }, body) end,
      "bad argument #1 to 'scope' (opts.grace must be a number of seconds >= 0, got -1)")
    assert.has_error(function() quench.scope({ grace = 0 / 0 }, body) end)
  end))

  it("names the missing self of a method called with a dot", T(function()
    local set = quench.task_set()
    assert.has_error(function() set.spawn(print) end,
      "bad argument #1 to 'spawn' (quench.task_set expected, got function; call it with a "
        .. "colon: x:spawn(...))")
    assert.has_error(function() set.join_next() end,
      "bad argument #1 to 'join_next' (quench.task_set expected, got nil; call it with a "
        .. "colon: x:join_next(...))")
    quench.scope(function(s)
      assert.has_error(function() s.spawn(print) end,
        "bad argument #1 to 'spawn' (quench.scope expected, got function; call it with a "
          .. "colon: x:spawn(...))")
    end)
    assert.has_error(function() quench.task_set({ detached = true }) end,
      "bad argument #1 to 'task_set' (unknown option 'detached')")
  end))

  it("join_all and try_join name a task of an earlier run as such", function()
    local old
    quench.run(function() old = quench.spawn(function() end); old:join() end)
    quench.run(function()
      assert.has_error(function() quench.join_all(function() end, old) end,
        "bad argument #2 to 'join_all' (the task belongs to another runtime: a task handle "
          .. "is only valid in the quench.run that spawned it)")
      assert.has_error(function() quench.try_join(old) end,
        "bad argument #1 to 'try_join' (the task belongs to another runtime: a task handle "
          .. "is only valid in the quench.run that spawned it)")
    end)
  end)
end)

describe("task sets", function()
  it("join_next gives tasks in completion order, then nil", T(function()
    local set = quench.task_set()
    for _, d in ipairs({ 3, 1, 2 }) do set:spawn(function() quench.sleep(d); return d end) end
    local order = {}
    while true do
      local h, ok, v = set:join_next()
      if not h then break end
      assert.is_true(ok)
      order[#order + 1] = v
    end
    assert.are.same({ 1, 2, 3 }, order)
    assert.are.equal(0, set:len())
  end))

  it("abort_all and <close> abort what is left", T(function()
    local log = {}
    do
      local set <close> = quench.task_set()
      for i = 1, 3 do
        set:spawn(function()
          local _ <close> = closer(log, i)
          quench.sleep(100)
        end)
      end
      quench.yield()
    end
    table.sort(log)
    assert.are.same({ 1, 2, 3 }, log)
  end))

  it("tasks aborted before they ever ran are still given by join_next", T(function()
    local set = quench.task_set()
    for _ = 1, 3 do set:spawn(quench.sleep, 10) end
    set:abort_all("never mind")
    local n = 0
    while true do
      local h, ok, err = set:join_next()
      if not h then break end
      assert.is_false(ok)
      assert.are.equal("never mind", err.reason)
      n = n + 1
    end
    assert.are.equal(3, n)
  end))

  it("a dropped join_next loses no completion", T(function()
    local set = quench.task_set()
    set:spawn(function() quench.sleep(2); return "late" end)
    assert.is_false((quench.timeout(1, set.join_next, set)))
    local h, ok, v = set:join_next()
    assert.is_not_nil(h)
    assert.are.same({ true, "late" }, { ok, v })
  end))
end)

describe("join_all and try_join", function()
  it("join_all waits for all and reports each outcome", T(function()
    local r = quench.join_all(function() quench.sleep(2); return 1 end,
      function() error("bad", 0) end, quench.spawn(function() return "h" end))
    assert.are.same({ true, 1, n = 2 }, r[1])
    assert.are.same({ false, "bad", n = 2 }, r[2])
    assert.are.same({ true, "h", n = 2 }, r[3])
  end))

  it("try_join returns every result, or the first error after aborting the others", T(function()
    local ok, r = quench.try_join(function() return 1 end, function() quench.sleep(1); return 2 end)
    assert.is_true(ok)
    assert.are.same({ { 1, n = 1 }, { 2, n = 1 } }, r)
    local log = {}
    local ok2, err = quench.try_join(
      function() local _ <close> = closer(log, "other dropped"); quench.sleep(10) end,
      function() quench.sleep(1); error("first", 0) end)
    assert.is_false(ok2)
    assert.are.equal("first", err)
    assert.are.same({ "other dropped" }, log)
    assert.are.equal(2, quench.now())
  end))

  it("reject what is not a function or task", T(function()
    assert.has_error(function() quench.join_all(1) end,
      "bad argument #1 to 'join_all' (function or task expected, got number)")
  end))
end)

describe("introspection", function()
  it("quench.tasks lists live tasks with name, state, what they wait for and age", T(function()
    local h = quench.spawn(function() quench.sleep(5) end)
    h:name("sleeper")
    local ch = quench.channel()
    local r = quench.spawn(function() ch:recv() end)
    quench.sleep(1)
    local by_id = {}
    for _, t in ipairs(quench.tasks()) do by_id[t.id] = t end
    assert.are.equal("sleeper", by_id[h:id()].name)
    assert.are.equal("suspended", by_id[h:id()].state)
    assert.are.equal("sleep until 5.0", by_id[h:id()].waiting)
    assert.are.equal(1, by_id[h:id()].age)
    assert.are.equal("channel recv", by_id[r:id()].waiting)
    assert.are.equal(h, by_id[h:id()].handle)
    assert.are.equal("running", by_id[quench.current():id()].state)
    r:abort()
    h:abort()
  end))

  it("h:traceback shows where a suspended task waits", T(function()
    local function waits_here() quench.sleep(5) end
    local h = quench.spawn(function() waits_here() end)
    quench.yield()
    assert.matches("in %a+ 'waits_here'", h:traceback())
    h:abort()
    assert.is_nil(h:traceback())
  end))

  it("quench.stats counts spawned, finished, cancelled, failed tasks and polls", function()
    local stats
    quench.run({ clock = "virtual", on_task_error = function() end }, function()
      quench.spawn(function() end):join()
      quench.spawn(function() error("x") end):join()
      local h = quench.spawn(quench.sleep, 10)
      quench.yield()
      h:abort()
      stats = quench.stats()
    end)
    assert.are.equal(4, stats.spawned)         -- main included
    assert.are.equal(3, stats.finished)
    assert.are.equal(1, stats.cancelled)
    assert.are.equal(1, stats.failed)
    assert.are.equal(1, stats.alive)
    assert.is_true(stats.polls >= 4)
  end)

  it("warns about a task that runs longer than the budget without waiting", function()
    local warnings = {}
    quench.run({ slow_task = 0.01, on_warning = function(m) warnings[#warnings + 1] = m end },
      function()
        local h = quench.spawn(function()
          local t0 = os.clock()
          while os.clock() - t0 < 0.05 do end   -- CPU for 50 ms, no await
        end)
        h:name("cruncher")
        h:join()
      end)
    assert.are.equal(1, #warnings)
    assert.matches("task %d+ %(cruncher%) ran 0%.%d+ s without waiting", warnings[1])
  end)
end)

describe("signals and graceful shutdown", function()
  local function run_example(env, signals)
    local cmd = string.format(
      "cd %q && %s LUA_CPATH=%q lua5.4 examples/graceful_shutdown.lua > %s 2>&1 & echo $!",
      ".", env, package.cpath, os.tmpname())
    local out_file = cmd:match("> (%S+) 2>&1")
    local pid = io.popen(cmd):read("l")
    local function output()
      local f = io.open(out_file)
      local s = f and f:read("a") or ""
      if f then f:close() end
      return s
    end
    local deadline = os.time() + 20
    while not output():match("ready") and os.time() < deadline do os.execute("sleep 0.05") end
    for _, sig in ipairs(signals) do
      os.execute("kill -" .. sig .. " " .. pid)
      os.execute("sleep 0.2")
    end
    while os.execute("kill -0 " .. pid .. " 2>/dev/null") and os.time() < deadline do
      os.execute("sleep 0.05")
    end
    local s = output()
    os.remove(out_file)
    return s
  end

  it("on SIGINT: cancel, async cleanup of every worker, flush, exit 0", function()
    local out = run_example("GRACE=5", { "INT" })
    assert.matches("ready.*shutdown: SIGINT.*worker 1: flushed.*worker 2: flushed"
      .. ".*worker 3: flushed.*flush: all workers stopped\nexit 0\n$", out)
  end)

  it("SIGTERM with a worker overrunning the grace period: it is aborted, exit 1", function()
    local out = run_example("GRACE=0.5 SLOW_WORKER=1", { "TERM" })
    assert.matches("shutdown: SIGTERM.*worker 3: did not finish in time, aborting"
      .. ".*flush: all workers stopped %(some aborted%)\nexit 1\n$", out)
    assert.is_nil(out:match("worker 3: flushed"))
  end)

  it("a second signal aborts at once, exit 130", function()
    local out = run_example("GRACE=60 SLOW_WORKER=1", { "INT", "INT" })
    assert.matches("shutdown: SIGINT.*second signal: aborting now.*exit 130\n$", out)
  end)

  it("quench.signal rejects unknown names and needs a task", T(function()
    assert.has_error(function() quench.signal("SIGFOO") end,
      "bad argument #1 to 'signal' (unknown signal 'SIGFOO' (SIGINT, SIGTERM, SIGHUP, "
      .. "SIGQUIT, SIGUSR1, SIGUSR2 or SIGWINCH))")
  end))

  it("a delivery that woke a dropped wait is not lost", function()
    quench.run(function()
      quench.spawn(function() os.execute("kill -USR1 $PPID; kill -USR2 $PPID") end)
      local ok, first = quench.timeout(10, function()
        return quench.select(quench.signal_op("SIGUSR1"), quench.signal_op("SIGUSR2"))
      end)
      assert.is_true(ok)
      -- the other one, delivered to the losing wait or after the select, is counted
      local other = first == 1 and "SIGUSR2" or "SIGUSR1"
      assert.are.same({ true, other }, { quench.timeout(10, quench.signal, other) })
    end)
  end)

  it("a signal sent to ourselves wakes quench.signal", function()
    quench.run(function()
      quench.spawn(function() os.execute("kill -USR1 $PPID") end)
      local ok, name = quench.timeout(10, quench.signal, "SIGUSR1")
      assert.is_true(ok)
      assert.are.equal("SIGUSR1", name)
    end)
  end)
end)
