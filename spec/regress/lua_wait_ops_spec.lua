-- quench.op(fn, ...) makes an op of a wait written in Lua: awaited, it runs
-- fn as a branch of the awaiting task; it is single-use like every op and
-- goes in select and timeout. The `_op` forms of the Lua-written waits
-- (interval, timer, rate limiter, watch wait_for) are such ops, with
-- op:await() (they were plain functions, usable only as select branches).
local quench = require "quench"
local T = quench.test

describe("quench.op: ops of waits written in Lua", function()
  it("awaits fn's results, once", T(function()
    local op = quench.op(function(a, b) quench.sleep(1) return a + b, "x" end, 2, 3)
    assert.equal("quench.op", getmetatable(op).__name)
    assert.same({ 5, "x" }, { op:await() })
    assert.equal(1, quench.now())
    assert.has_error(function() op:await() end,
      "quench.op:await: this call op was already used (ops are single-use)")
  end))

  it("a loser is dropped with its cleanup; a winner's error is raised", T(function()
    local closed = false
    local slow = quench.op(function()
      local _ <close> = setmetatable({}, { __close = function() closed = true end })
      quench.sleep(10)
    end)
    assert.equal(2, (quench.select(slow, quench.sleep_op(1))))
    assert.is_true(closed)
    assert.same({ true, "in time" },
      { quench.timeout(1, quench.op(function() quench.sleep(0.5) return "in time" end)) })
    local bad = quench.op(function() error("boom", 0) end)
    assert.same({ false, "boom" }, { pcall(bad.await, bad) })
  end))

  it("refuses what is not a function", function()
    assert.has_error(function() quench.op(42) end,
      "bad argument #1 to 'quench.op' (function expected, got number)")
  end)

  it("interval, timer, rate limiter and watch wait_for have real ops", T(function()
    local iv = quench.interval(2)
    assert.equal(0, iv:tick_op():await())             -- the first tick is at once
    assert.equal(2, iv:tick_op():await())
    local tm = quench.timer(3)
    tm:wait_op():await()
    assert.equal(5, quench.now())
    local lim = quench.rate_limiter { rate = 1, burst = 1 }
    lim:acquire_op():await()
    local w = quench.watch(1)
    local rx = w:subscribe()
    quench.spawn(function() quench.sleep(1) w:send(7) end)
    local ready = rx:wait_for_op(function(v) return v == 7 end)
    assert.equal("quench.op", getmetatable(ready).__name)
    assert.equal(7, (ready:await()))
  end))
end)
