-- A loop of awaits that can all complete at once never suspended: the
-- timer of a timeout around it, the other branches of its select, the
-- other tasks and I/O never ran, and the runtime hung. Each task now has a
-- budget of 128 awaits a run (tokio's coop budget); past it, an await
-- suspends once, even if it is ready.
local quench = require "quench"
local T = quench.test

local BUDGET = 128

-- A guard inside the loops: on a runtime without the budget they would
-- spin for ever; fail instead.
local function watchdog()
  local t0 = os.clock()
  return function()
    if os.clock() - t0 > 10 then error("a loop of ready awaits never let anything else run", 0) end
  end
end

describe("the cooperative budget", function()
  it("the issue's program: a timeout ends a loop of ready channel awaits", function()
    local check = watchdog()
    local ok, err, n = quench.run(function()         -- real clock: the timer must fire
      local ch = quench.channel()
      local n = 0
      local ok, err = quench.timeout(0.1, function()
        while true do
          ch:send(1)
          ch:recv()
          n = n + 1
          check()
        end
      end)
      return ok, err, n
    end)
    assert.is_false(ok)
    assert.is_true(quench.is_timeout(err))
    assert.is_true(n > 0)
  end)

  it("another task runs while one loops over a ready channel", T(function()
    local check = watchdog()
    local ch = quench.channel()
    local h = quench.spawn(function()
      while true do ch:send(1); ch:recv(); check() end
    end)
    quench.yield()                                   -- h starts and loops
    h:abort()                                        -- reached: h gave way
    assert.is_true(h:done())
  end))

  it("a free semaphore, a closed watch, a finished task: each loop gives way", T(function()
    local check = watchdog()
    local sem = quench.semaphore(1)
    local tx = quench.watch(0)
    local rx = tx:subscribe()
    tx:close()
    local done = quench.spawn(function() end)
    done:join()
    local loops = {
      function() while true do local _p <close> = sem:acquire(); check() end end,
      function() while true do assert(rx:changed() == nil); check() end end,
      function() while true do done:join(); check() end end,
      function() while true do quench.select(sem:acquire_op(), quench.sleep_op(1)); check() end end,
    }
    for _, loop in ipairs(loops) do
      local h = quench.spawn(loop)
      quench.yield()
      h:abort()
      assert.is_true(h:done())
    end
  end))

  it("another branch of the select wins over a branch that loops over ready awaits", T(function()
    local check = watchdog()
    local ch, other = quench.channel(), quench.channel()
    quench.spawn(function() other:send("x") end)
    local i, v = quench.select(
      function() while true do ch:send(1); ch:recv(); check() end end,
      function() return other:recv() end)
    assert.are.equal(2, i)
    assert.are.equal("x", v)
  end))

  it("a ready await suspends only after 128 in one run (S7 otherwise holds)", T(function()
    local ch = quench.channel()
    quench.yield()                                   -- a fresh run: the whole budget
    local ran = false
    quench.spawn(function() ran = true end)
    for i = 1, BUDGET do
      if i % 2 == 1 then ch:send(i) else ch:recv() end
      assert.is_false(ran, "the task ran at await " .. i)
    end
    assert.is_true(ch:send("last"))                  -- the 129th: suspends once, then completes
    assert.is_true(ran)
    assert.are.equal("last", ch:recv())
  end))

  it("a task cancelled while it gives way gets Cancelled from the await, which took nothing", T(function()
    local ch = quench.channel()
    local h = quench.spawn(function()
      for i = 1, 1000 do ch:send(i); assert(ch:recv() == i) end
      quench.sleep(1)
    end)
    quench.yield()
    assert.are.equal(0, ch:len())
    h:cancel("stop")
    local ok, err = h:join()
    assert.is_false(ok)
    assert.is_true(quench.is_cancelled(err))
    assert.are.equal(0, ch:len())
  end))
end)
