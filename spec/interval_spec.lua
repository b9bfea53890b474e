-- quench.sleep_until, intervals with a missed-tick policy, resettable timers.
local quench = require "quench"
local T = quench.test

describe("quench.sleep_until", function()
  it("sleeps until an absolute time, and keeps it however late it was started", T(function()
    quench.sleep_until(2.5)
    assert.are.equal(2.5, quench.now())
    quench.sleep_until(1)                        -- past: a yield, no time passes
    assert.are.equal(2.5, quench.now())
  end))

  it("has an op whose deadline is absolute, whenever it starts", T(function()
    local op = quench.sleep_until_op(3)
    quench.sleep(1)
    op:await()
    assert.are.equal(3, quench.now())
    local i = quench.select(quench.sleep_until_op(5), quench.sleep_until_op(4))
    assert.are.equal(2, i)
    assert.are.equal(4, quench.now())
  end))

  it("is cancel-safe: dropped by a timeout, nothing is left", T(function()
    local ok = quench.timeout(1, quench.sleep_until, 10)
    assert.is_false(ok)
    assert.are.equal(1, quench.now())
  end))

  it("rejects what is not a time", T(function()
    assert.has_error(function() quench.sleep_until("x") end)
    assert.has_error(function() quench.sleep_until_op(0 / 0) end)
  end))
end)

-- Tick n times with a busy stretch of `busy` seconds after tick `at`.
local function ticks(missed, n, busy_at, busy)
  local iv = quench.interval(1, { missed = missed })
  local out = {}
  for i = 1, n do
    local scheduled = iv:tick()
    out[#out + 1] = { scheduled, quench.now() }
    if i == busy_at then quench.sleep(busy) end
  end
  return out
end

describe("quench.interval", function()
  it("ticks at once, then every period, without drift", T(function()
    local iv = quench.interval(0.5)
    for i = 0, 4 do
      assert.are.equal(i * 0.5, iv:tick())
      assert.are.equal(i * 0.5, quench.now())
      quench.sleep(0.1)                          -- work shorter than the period
    end
  end))

  it("opts.start sets the first tick", T(function()
    local iv = quench.interval(1, { start = 3 })
    assert.are.equal(3, iv:tick())
    assert.are.equal(3, quench.now())
  end))

  it("burst: missed ticks fire at once, one after another, to catch up", T(function()
    local out = ticks("burst", 6, 1, 3.5)          -- busy from 0 to 3.5
    assert.are.same({ { 0, 0 }, { 1, 3.5 }, { 2, 3.5 }, { 3, 3.5 }, { 4, 4 }, { 5, 5 } }, out)
  end))

  it("delay: after a miss the schedule restarts one period from the late tick", T(function()
    local out = ticks("delay", 4, 1, 3.5)
    assert.are.same({ { 0, 0 }, { 1, 3.5 }, { 4.5, 4.5 }, { 5.5, 5.5 } }, out)
  end))

  it("skip: missed ticks are dropped, the schedule keeps its phase", T(function()
    local out = ticks("skip", 4, 1, 3.5)
    assert.are.same({ { 0, 0 }, { 1, 3.5 }, { 4, 4 }, { 5, 5 } }, out)
  end))

  it("skip never fires twice for one period", T(function()
    local iv = quench.interval(1, { missed = "skip" })
    local seen = {}
    for _, busy in ipairs({ 0.2, 2.7, 0.9, 5.01, 0, 1.5 }) do
      iv:tick()
      local period = math.floor(quench.now())
      assert.is_nil(seen[period], "two ticks in period " .. period)
      seen[period] = true
      quench.sleep(busy)
    end
  end))

  it("tick_op is a select branch; a dropped one consumes no tick", T(function()
    local iv = quench.interval(1, { start = 1 })
    local i = quench.select(iv:tick_op(), quench.sleep_op(0.5))
    assert.are.equal(2, i)                       -- the tick lost: not consumed
    assert.are.equal(1, iv:next_tick())
    local _, at = quench.select(iv:tick_op(), quench.sleep_op(5))
    assert.are.equal(1, at)
    assert.are.equal(2, iv:next_tick())
  end))

  it("reset restarts the schedule one period from now", T(function()
    local iv = quench.interval(2)
    iv:tick()
    quench.sleep(1.5)
    iv:reset()
    assert.are.equal(3.5, iv:tick())
  end))

  it("set_missed changes the policy", T(function()
    local iv = quench.interval(1)
    iv:set_missed("skip")
    iv:tick()
    quench.sleep(2.5)
    iv:tick()
    assert.are.equal(3, iv:tick())
  end))

  it("rejects bad arguments", T(function()
    assert.has_error(function() quench.interval(0) end,
      "bad argument #1 to 'interval' (the period must be a positive number of seconds, got 0)")
    assert.has_error(function() quench.interval(1, { missed = "later" }) end,
      "bad argument #2 to 'interval' (missed must be \"burst\", \"delay\" or \"skip\", got string)")
    assert.has_error(function() quench.interval(1, { every = 2 }) end,
      "bad argument #2 to 'interval' (unknown option 'every')")
    local iv = quench.interval(1)
    assert.has_error(function() iv.tick() end)
  end))
end)

describe("quench.timer", function()
  it("elapses after its duration; deadline and is_elapsed say so", T(function()
    local tm = quench.timer(2)
    assert.are.equal(2, tm:deadline())
    assert.is_false(tm:is_elapsed())
    tm:wait()
    assert.are.equal(2, quench.now())
    assert.is_true(tm:is_elapsed())
    tm:wait()                                    -- elapsed: at once
    assert.are.equal(2, quench.now())
  end))

  it("a reset from another task moves a wait in progress", T(function()
    local tm = quench.timer(2)
    local h = quench.spawn(function() tm:wait(); return quench.now() end)
    quench.sleep(1)
    tm:reset()                                   -- now + 2
    quench.sleep(1.5)
    tm:reset(0.5)
    assert.are.same({ true, 3 }, { h:join() })
  end))

  it("debounces without a respawn: fires once the events stop", T(function()
    local ch = quench.channel(10)
    quench.spawn(function()
      for _, t in ipairs({ 0.5, 0.3, 0.4 }) do quench.sleep(t); ch:send("event") end
    end)
    local tm = quench.timer(1)
    local events = 0
    while true do
      local i = quench.select(ch:recv_op(), tm:wait_op())
      if i == 2 then break end
      events = events + 1
      tm:reset()
    end
    assert.are.equal(3, events)
    assert.are.equal(2.2, quench.now())          -- 1.2 (last event) + 1
  end))

  it("reset_at moves it to a time, earlier too", T(function()
    local tm = quench.timer(10)
    local h = quench.spawn(function() tm:wait() end)
    quench.sleep(1)
    tm:reset_at(2)
    h:join()
    assert.are.equal(2, quench.now())
  end))

  it("rejects bad durations", T(function()
    assert.has_error(function() quench.timer(-1) end,
      "bad argument #1 to 'timer' (seconds must be a number >= 0, got -1)")
    local tm = quench.timer(1)
    assert.has_error(function() tm:reset("x") end,
      "bad argument #1 to 'reset' (seconds must be a number >= 0, got string)")
    assert.has_error(function() tm:reset_at(0 / 0) end)
  end))
end)
