-- A task's thread is reachable from Lua (coroutine.running()), and plain Lua
-- may resume or close it: a Copas-style adapter or a callback bridge does.
-- Before: a resume of a task waiting in sleep, join, m:lock() or
-- n:notified() crashed the process (SIGSEGV in the wait's continuation); in
-- ch:recv() it made recv return a false nil, "closed" and left the task
-- suspended for ever; coroutine.close ran the task's <close> variables but
-- left it "suspended", and a later join said "cannot resume dead coroutine".
-- Now a resume of a waiting thread is refused (an error in the resumer, the
-- task keeps waiting as if nothing happened), and a close ends the task as
-- failed with an error that says so.
local quench = require "quench"
local T = quench.test

-- The ways a task waits, each with what wakes it (called from the test body).
local function waits()
  local m, n, ch = quench.mutex(), quench.notify(), quench.channel()
  local held
  local other = quench.spawn(function() quench.sleep(5) return "joined" end)
  return {
    { "sleep", function() quench.sleep(2) return "slept" end, function() end },
    { "join", function() local _, v = other:join() return v end, function() end },
    { "lock", function() local _g <close> = m:lock() return "locked" end,
      function() held:release() end, function() held = m:lock() end },
    { "notified", function() n:notified() return "notified" end, function() n:notify_one() end },
    { "recv", function() return ch:recv() end, function() ch:send("sent") end },
  }
end

describe("coroutine.resume of a task's thread (issue 14, defect 1)", function()
  it("is refused with an error in the resumer, and the task keeps waiting, whatever it waits in",
    T(function()
      for _, w in ipairs(waits()) do
        local name, wait, wake, setup = w[1], w[2], w[3], w[4]
        if setup then setup() end
        local co
        local h = quench.spawn(function() co = coroutine.running() return wait() end)
        quench.sleep(1)
        assert.are.equal("suspended", coroutine.status(co), name)
        local ok, err = pcall(coroutine.resume, co, "junk", 1, 2)
        assert.is_false(ok, name)
        assert.matches("coroutine.resume: the thread of task %d+ is waiting in quench", err, nil, name)
        local ok2, err2 = pcall(coroutine.resume, co)
        assert.is_false(ok2, name)
        assert.matches("only quench resumes it", err2)
        assert.are.equal("suspended", h:state(), name)
        wake()
        local r = table.pack(h:join())
        assert.is_true(r[1], name)
        local expect = { sleep = "slept", join = "joined", lock = "locked", notified = "notified",
                         recv = "sent" }
        assert.are.equal(expect[name], r[2], name)
      end
    end))

  it("is refused from a plain coroutine and from a wrap function inside a task", T(function()
    local co
    local h = quench.spawn(function() co = coroutine.running() quench.sleep(2) return "done" end)
    quench.sleep(1)
    local inner = coroutine.create(function() return coroutine.resume(co) end)
    local ok, err = coroutine.resume(inner)
    assert.is_false(ok)
    assert.matches("only quench resumes it", err)
    local w = coroutine.wrap(function() coroutine.resume(co) return "not reached" end)
    local ok2, err2 = pcall(w)
    assert.is_false(ok2)
    assert.matches("only quench resumes it", err2)
    assert.are.same({ true, "done" }, { h:join() })
  end))

  it("of the main task, from a child, is refused", function()
    local main_co
    local r = quench.run({ clock = "virtual" }, function()
      main_co = coroutine.running()
      local child = quench.spawn(function()
        return pcall(coroutine.resume, main_co)
      end)
      local ok, resumed, err = child:join()
      assert.is_true(ok)
      assert.is_false(resumed)
      assert.matches("only quench resumes it", err)
      return "main went on"
    end)
    assert.are.equal("main went on", r)
  end)

  it("of a select branch's thread is refused, and the branch wins as it would have", T(function()
    local bco
    local h = quench.spawn(function()
      return quench.select(function() bco = coroutine.running() quench.sleep(2) return "branch" end,
                           function() quench.sleep(5) return "other" end)
    end)
    quench.sleep(1)
    local ok, err = pcall(coroutine.resume, bco)
    assert.is_false(ok)
    assert.matches("the thread of a select branch of task %d+ is waiting", err)
    assert.are.same({ true, 1, "branch" }, { h:join() })
  end))

  it("of a waiting task inside pcall with its own hook keeps that hook", T(function()
    local co
    local h = quench.spawn(function() co = coroutine.running() quench.sleep(2) return 1 end)
    quench.sleep(1)
    local calls = 0
    local me = quench.spawn(function()
      debug.sethook(function() calls = calls + 1 end, "", 1000000)
      local ok = pcall(coroutine.resume, co)
      local hook, mask, count = debug.gethook()
      debug.sethook()
      return ok, hook ~= nil, mask, count
    end)
    assert.are.same({ true, false, true, "", 1000000 }, { me:join() })
    assert.are.same({ true, 1 }, { h:join() })
  end))
end)

describe("coroutine.resume of a task's thread, the other cases", function()
  it("of a task in quench.yield or at a cancellation point is refused", T(function()
    local co
    local h = quench.spawn(function()
      co = coroutine.running()
      quench.yield()
      return "yielded"
    end)
    quench.yield()                      -- h runs up to its yield
    local ok, err = pcall(coroutine.resume, co)
    assert.is_false(ok)
    assert.matches("only quench resumes it", err)
    assert.are.same({ true, "yielded" }, { h:join() })
  end))

  it("of a task's own thread by its select branch is refused; a close by it ends the task", T(function()
    local h = quench.spawn(function()
      local tco = coroutine.running()
      return quench.select(function()
        quench.sleep(1)                 -- now the task's thread waits in the select
        return pcall(coroutine.resume, tco)
      end)
    end)
    local ok, i, resumed, err = h:join()
    assert.is_true(ok)
    assert.are.equal(1, i)
    assert.is_false(resumed)
    assert.matches("the thread of task %d+ is waiting in quench %(select%)", err)

    local log = {}
    local h2 = quench.spawn(function()
      local tco = coroutine.running()
      quench.select(function()
        local _b <close> = setmetatable({}, { __close = function() log[#log + 1] = "branch" end })
        quench.sleep(1)
        coroutine.close(tco)
        log[#log + 1] = "branch went on"
        quench.sleep(1)
        log[#log + 1] = "not reached"
      end)
    end)
    local ok2, err2 = h2:join()
    assert.is_false(ok2)
    assert.matches("the thread of task %d+ was closed by coroutine.close%(%) while it waited %(select%)",
      err2)
    assert.are.same({ "branch went on", "branch" }, log)
  end))

  it("a yield across quench is an error, not a hang: a bare yield, a wait in a plain coroutine", T(function()
    local h = quench.spawn(function() coroutine.yield("bare") end)
    local ok, err = h:join()
    assert.is_false(ok)
    assert.matches("coroutine.yield%(%) called directly in a task", err)
    local ok2, err2 = pcall(quench.select, function() coroutine.yield() end)
    assert.is_false(ok2)
    assert.matches("coroutine.yield%(%) called directly in a select branch", err2)
    local wrapped = coroutine.wrap(function() return pcall(quench.sleep, 1) end)
    local ok3, err3 = wrapped()
    assert.is_false(ok3)
    assert.matches("not a quench task or select branch", err3)
  end))

  it("from a place with no task to raise in (on_task_error) is a warning", function()
    local warnings, co = {}, nil
    quench.run({ clock = "virtual", on_warning = function(m) warnings[#warnings + 1] = m end,
                 on_task_error = function() coroutine.resume(co) end }, function()
      local sleeper = quench.spawn(function() co = coroutine.running() quench.sleep(5) return "ok" end)
      quench.yield()
      quench.spawn(function() error("fails", 0) end):detach()
      quench.sleep(1)
      assert.are.same({ true, "ok" }, { sleeper:join() })
    end)
    assert.are.equal(1, #warnings)
    assert.matches("only quench resumes it", warnings[1])
  end)

  it("of the winner's thread by a loser's cleanup makes the select raise, not lose its results silently",
    T(function()
      for _, act in ipairs({ "resume", "close" }) do
        local wco
        local ok, err = pcall(quench.select_biased, function()
          wco = coroutine.running()
          quench.sleep(1)
          return "won"
        end, function()
          local _x <close> = setmetatable({}, { __close = function()
            if act == "resume" then coroutine.resume(wco, "junk") else coroutine.close(wco) end
          end })
          quench.sleep(5)
        end)
        assert.is_false(ok, act)
        assert.matches("the thread of the branch that won was resumed or closed from Lua", err, nil, act)
      end
      -- the runtime goes on, the pool too
      local h = quench.spawn(quench.select, function() return "fine" end)
      assert.are.same({ true, 1, "fine" }, { h:join() })
    end))
end)

describe("coroutine.close of a task's thread (issue 14, defect 1)", function()
  it("runs its <close> variables and ends the task as failed, saying why", T(function()
    local log, co = {}, nil
    local n = quench.notify()
    local h = quench.spawn(function()
      co = coroutine.running()
      local _x <close> = setmetatable({}, { __close = function() log[#log + 1] = "closed" end })
      quench.defer(function() log[#log + 1] = "deferred" end)
      n:notified()
    end)
    quench.sleep(1)
    assert.is_true(coroutine.close(co))
    assert.are.same({ "closed" }, log)
    local ok, err = h:join()
    assert.is_false(ok)
    assert.matches("the thread of task %d+ was closed by coroutine.close%(%) while it waited", err)
    assert.are.same({ "closed", "deferred" }, log)
    assert.are.equal("done", h:state())
    -- nothing is left waiting: a notify finds no one, and the runtime goes on
    n:notify_one()
    assert.are.same({ true, 3 }, { quench.spawn(function() return 3 end):join() })
  end))

  it("drops what the task waited for: a recv no longer takes a message", T(function()
    local ch = quench.channel()
    local co
    local h = quench.spawn(function() co = coroutine.running() return ch:recv() end)
    quench.sleep(1)
    coroutine.close(co)
    assert.is_false((h:join()))
    ch:send("kept")
    assert.are.equal("kept", ch:try_recv())
  end))

  it("of a select branch's thread makes the select raise in its task", T(function()
    local bco, log = nil, {}
    local h = quench.spawn(function()
      return quench.select(function()
        bco = coroutine.running()
        local _x <close> = setmetatable({}, { __close = function() log[#log + 1] = "branch closed" end })
        quench.sleep(5)
      end, function() quench.sleep(10) return "other" end)
    end)
    quench.sleep(1)
    coroutine.close(bco)
    assert.are.same({ "branch closed" }, log)
    local ok, err = h:join()
    assert.is_false(ok)
    assert.matches("the thread of a select branch of task %d+ was closed by coroutine.close", err)
  end))

  it("of a thread waiting inside xpcall does not leave later tasks a broken message handler",
    T(function()
      local co
      local h = quench.spawn(function()
        co = coroutine.running()
        return xpcall(function() quench.sleep(5) end, function(m) return "handled: " .. tostring(m) end)
      end)
      quench.sleep(1)
      coroutine.close(co)
      assert.is_false((h:join()))
      for i = 1, 5 do   -- Lua 5.4.4 keeps the handler index of a thread reset inside xpcall
        local ok, err = quench.spawn(function() error("boom " .. i, 0) end):join()
        assert.is_false(ok)
        assert.are.equal("boom " .. i, err)
      end
    end))

  it("of a finished task's thread (back in the pool) harms no later task", T(function()
    local co
    quench.spawn(function() co = coroutine.running() end):join()
    assert.is_true(coroutine.close(co))
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.is_string(err)
    for i = 1, 3 do
      assert.are.same({ true, i }, { quench.spawn(function() quench.sleep(0) return i end):join() })
    end
  end))

  it("a resume of a finished task's thread is refused, and the thread is not reused broken", T(function()
    local co
    quench.spawn(function() co = coroutine.running() end):join()
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.matches("belongs to quench", err)
    for i = 1, 3 do
      assert.are.same({ true, i }, { quench.spawn(function() quench.sleep(0) return i end):join() })
    end
  end))
end)
