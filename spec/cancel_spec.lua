-- Graceful cancellation, shield, escalation, error values (docs/design.md S5, S6, S11).
local quench = require "quench"
local T = quench.test

describe("graceful cancel (S5)", function()
  it("returns at once; the task sees Cancelled raised from its current await", T(function()
    local seen
    local h = quench.spawn(function()
      local ok, err = pcall(quench.sleep, 100)
      seen = { ok = ok, err = err, at = quench.now() }
    end)
    quench.sleep(1)
    h:cancel("enough")
    assert.is_nil(seen)                    -- cancel does not run the task
    h:join()
    assert.is_false(seen.ok)
    assert.is_true(quench.is_cancelled(seen.err))
    assert.are.equal("enough", seen.err.reason)
    assert.are.equal(1, seen.at)           -- woken by the cancel, not by its timer
  end))

  it("is level-triggered: every later await raises too", T(function()
    local raised = 0
    local h = quench.spawn(function()
      for _ = 1, 3 do
        if not pcall(quench.sleep, 10) then raised = raised + 1 end
      end
      if not pcall(quench.yield) then raised = raised + 1 end
    end)
    quench.yield()
    h:cancel()
    h:join()
    assert.are.equal(4, raised)
  end))

  it("raises at the first await of a task cancelled before it started", T(function()
    local before, after = false, false
    local h = quench.spawn(function()
      before = true
      quench.sleep(1)
      after = true
    end)
    h:cancel("early")
    local ok, err = h:join()
    assert.is_true(before)
    assert.is_false(after)
    assert.is_false(ok)
    assert.are.equal("early", err.reason)
  end))

  it("lets a shielded function await async cleanup, then raises at the next await", T(function()
    local log = {}
    local h = quench.spawn(function()
      local ok = pcall(quench.sleep, 100)
      log[#log + 1] = "cancelled:" .. tostring(not ok)
      quench.shield(function()
        quench.sleep(5)                    -- would raise without the shield
        log[#log + 1] = string.format("flushed at %g", quench.now())
      end)
      quench.sleep(1)
      log[#log + 1] = "not reached"
    end)
    quench.sleep(1)
    h:cancel()
    local ok, err = h:join()
    assert.is_false(ok)
    assert.is_true(quench.is_cancelled(err))
    assert.are.same({ "cancelled:true", "flushed at 6" }, log)
  end))

  it("shield returns the function's results and passes its errors", T(function()
    assert.are.same({ 1, 2 }, { quench.shield(function(a) return a, 2 end, 1) })
    assert.has_error(function() quench.shield(error, "inner", 0) end, "inner")
  end))

  it("shields nest 4095 deep; one more raises a clear error, and the depth unwinds", T(function()
    local depth = 0
    local function nest()
      depth = depth + 1
      if depth <= 4096 then return quench.shield(nest) end
    end
    local ok, err = pcall(nest)
    assert.is_false(ok)
    assert.are.equal(4096, depth)
    assert.matches("quench.shield: nested more than 4095 deep", err, 1, true)
    -- every level left: a cancel is seen again at the next await
    quench.current():cancel()
    assert.has_error(function() quench.sleep(0) end)
  end))

  it("shield does not protect against abort", T(function()
    local cleaned = false
    local h = quench.spawn(function()
      quench.shield(function()
        local _ <close> = quench.guard(function() cleaned = true end)
        quench.sleep(100)
      end)
    end)
    quench.yield()
    h:abort()
    assert.is_true(cleaned)
    assert.is_true(h:done())
  end))

  it("a task that swallows Cancelled and returns is done with its values", T(function()
    local h = quench.spawn(function()
      pcall(quench.sleep, 100)
      return "kept going"
    end)
    quench.yield()
    h:cancel()
    assert.are.same({ true, "kept going" }, { h:join() })
  end))

  it("twice keeps the first reason; cancelling a finished task changes nothing", T(function()
    local h = quench.spawn(function() quench.sleep(10) end)
    quench.yield()
    h:cancel("first")
    h:cancel("second")
    assert.are.equal("first", select(2, h:join()).reason)
    local done = quench.spawn(function() return 1 end)
    done:join()
    done:cancel("late")
    assert.are.same({ true, 1 }, { done:join() })
  end))

  it("can be requested from inside another task's drop-time cleanup", T(function()
    local target = quench.spawn(function() quench.sleep(100) end)
    local h = quench.spawn(function()
      local _ <close> = quench.guard(function() target:cancel("from cleanup") end)
      quench.sleep(100)
    end)
    quench.yield()
    h:abort()
    assert.are.equal("from cleanup", select(2, target:join()).reason)
  end))

  it("a cancelled task that swallows Cancelled in a loop still lets others run", T(function()
    local spins = 0
    local h = quench.spawn(function()
      while spins < 50 do
        pcall(quench.sleep, 100)
        spins = spins + 1
      end
    end)
    quench.yield()
    h:cancel()
    quench.yield()
    assert.is_true(spins > 0 and spins < 50)   -- we ran while it spun
    h:abort()
    assert.is_true(h:done())
  end))
end)

describe("h:stop (cancel, grace period, then abort)", function()
  it("returns the task's own result when it ends within the grace period", T(function()
    local h = quench.spawn(function()
      local ok = pcall(quench.sleep, 100)
      quench.shield(quench.sleep, 2)        -- async cleanup inside the grace period
      return ok and "slept" or "cleaned up"
    end)
    quench.yield()
    local t0 = quench.now()
    assert.are.same({ true, "cleaned up" }, { h:stop(5, "shutdown") })
    assert.are.equal(2, quench.now() - t0)
  end))

  it("aborts the task once the grace period is over", T(function()
    local log = {}
    local h = quench.spawn(function()
      local _ <close> = quench.guard(function() log[#log + 1] = "dropped" end)
      quench.shield(quench.sleep, 100)      -- ignores the cancel for too long
      log[#log + 1] = "not reached"
    end)
    quench.yield()
    local t0 = quench.now()
    local ok, err = h:stop(5, "shutdown")
    assert.is_false(ok)
    assert.are.equal("shutdown", err.reason)
    assert.are.equal(5, quench.now() - t0)
    assert.are.same({ "dropped" }, log)
  end))

  it("reaches a task that spins on Cancelled (manual clock)", function()
    quench.run({ clock = "manual" }, function()
      local h = quench.spawn(function() while true do pcall(quench.sleep, 100) end end)
      quench.yield()
      quench.spawn(function() quench.yield(); quench.advance(5) end)
      assert.is_false((h:stop(5)))
      assert.is_true(h:done())
    end)
  end)
end)

describe("error values (S6)", function()
  it("Cancelled: kind, reason, tostring", T(function()
    local h = quench.spawn(quench.sleep, 10)
    quench.yield()
    h:abort({ code = 7 })
    local _, err = h:join()
    assert.are.equal("cancelled", err.kind)
    assert.are.same({ code = 7 }, err.reason)
    assert.is_true(quench.is_cancelled(err))
    assert.is_false(quench.is_timeout(err))
    assert.matches("^cancelled", tostring(err))
  end))

  -- An aborted task's Cancelled is made when first asked for: the same
  -- value for every join, with the reason the task had when it was dropped.
  it("an aborted task gives the same Cancelled to every join, with its reason", T(function()
    local plain, reasoned = quench.spawn(quench.sleep, 10), quench.spawn(quench.sleep, 10)
    local t = quench.token()
    local bound = t:spawn(quench.sleep, 10)
    quench.yield()
    plain:abort()
    reasoned:abort("why")
    t:cancel({ code = 8 })
    bound:abort("too late: the token's reason came first")
    local _, e1 = plain:join()
    local _, e2 = plain:join()
    local _, _, e3 = quench.timeout(1, plain:join_op())
    assert.is_true(quench.is_cancelled(e1))
    assert.is_nil(e1.reason)
    assert.are.equal(e1, e2)
    assert.are.equal(e1, e3)
    local _, r1 = reasoned:join()
    assert.are.equal("why", r1.reason)
    assert.are.equal(r1, select(2, reasoned:join()))
    assert.are.same({ code = 8 }, select(2, bound:join()).reason)
  end))

  it("quench.run raises the Cancelled of a main task aborted by another task", function()
    local ok, err = pcall(quench.run, function()
      local main = quench.current()
      quench.spawn(function() main:abort("from a child") end)
      quench.sleep(1)
    end)
    assert.is_false(ok)
    assert.is_true(quench.is_cancelled(err))
    assert.are.equal("from a child", err.reason)
  end)

  it("timeout: kind and tostring", T(function()
    local ok, err = quench.timeout(1, quench.sleep, 2)
    assert.is_false(ok)
    assert.are.equal("timeout", err.kind)
    assert.is_true(quench.is_timeout(err))
    assert.is_false(quench.is_cancelled(err))
    assert.are.equal("timeout: deadline elapsed", tostring(err))
  end))

  it("lookalike tables are not quench errors", function()
    assert.is_false(quench.is_cancelled({ kind = "cancelled" }))
    assert.is_false(quench.is_timeout("timeout"))
    assert.is_false(quench.is_cancelled(nil))
  end)
end)

describe("what cannot be cancelled (S11)", function()
  it("a CPU loop with no await runs to its end, cancel or abort notwithstanding", T(function()
    local iterations = 0
    local h = quench.spawn(function()
      local me = quench.current()
      me:cancel("now")
      me:abort("really")
      for _ = 1, 100000 do iterations = iterations + 1 end
      quench.yield()                       -- the first await: it stops here
      iterations = -1
    end)
    h:join()
    assert.are.equal(100000, iterations)
    assert.are.equal("now", select(2, h:join()).reason)
  end))

  it("quench.yield() is a cancellation point and lets others run", T(function()
    local iterations, other_ran = 0, false
    local h = quench.spawn(function()
      for _ = 1, 1000 do
        iterations = iterations + 1
        quench.yield()
      end
    end)
    quench.spawn(function() other_ran = true; h:cancel() end)
    h:join()
    assert.is_true(other_ran)
    assert.is_true(iterations < 1000)
  end))
end)
