-- quench.rate_limiter (token bucket) and quench.retry (backoff).
local quench = require "quench"
local T = quench.test

describe("quench.rate_limiter", function()
  it("lets a burst through at once, then one token per 1/rate seconds", T(function()
    local lim = quench.rate_limiter({ rate = 2, burst = 3 })
    local times = {}
    for _ = 1, 6 do
      lim:acquire()
      times[#times + 1] = quench.now()
    end
    assert.are.same({ 0, 0, 0, 0.5, 1, 1.5 }, times)
  end))

  it("refills while idle, up to the burst", T(function()
    local lim = quench.rate_limiter({ rate = 1, burst = 2, initial = 0 })
    assert.are.equal(0, lim:available())
    quench.sleep(10)
    assert.are.equal(2, lim:available())
    assert.is_true(lim:try_acquire(2))
    assert.is_false(lim:try_acquire())
  end))

  it("takes n tokens at once", T(function()
    local lim = quench.rate_limiter({ rate = 1, burst = 4, initial = 1 })
    lim:acquire(3)
    assert.are.equal(2, quench.now())
    assert.are.equal(0, lim:available())
  end))

  it("serves waiters in order: a big request is not starved by small ones", T(function()
    local lim = quench.rate_limiter({ rate = 1, burst = 3, initial = 0 })
    local order = {}
    local big = quench.spawn(function() lim:acquire(3); order[#order + 1] = "big" end)
    quench.sleep(0.1)
    local small = quench.spawn(function() lim:acquire(1); order[#order + 1] = "small" end)
    big:join(); small:join()
    assert.are.same({ "big", "small" }, order)
    assert.are.equal(4, quench.now())
    assert.is_false(lim:try_acquire())           -- nothing left over
  end))

  it("a cancelled acquire never holds tokens", T(function()
    local lim = quench.rate_limiter({ rate = 1, burst = 1, initial = 0 })
    local ok = quench.timeout(0.5, lim:acquire_op())
    assert.is_false(ok)
    quench.sleep(0.5)                            -- the token of t = 1 arrives
    assert.is_true(lim:try_acquire())            -- and nobody took it
    -- a dropped waiter does not block the queue either
    local h = quench.spawn(function() lim:acquire() end)
    quench.sleep(0.1)
    h:abort()
    quench.sleep(1)
    assert.is_true(lim:try_acquire())
  end))

  it("acquire_op is a select branch", T(function()
    local lim = quench.rate_limiter({ rate = 1, burst = 1, initial = 0 })
    local i = quench.select(lim:acquire_op(), quench.sleep_op(5))
    assert.are.equal(1, i)
    assert.are.equal(1, quench.now())
  end))

  it("rejects bad options and requests above the burst", T(function()
    assert.has_error(function() quench.rate_limiter({ rate = 0 }) end,
      "bad argument #1 to 'rate_limiter' (opts.rate must be a positive number of tokens a second, got 0)")
    assert.has_error(function() quench.rate_limiter({ rate = 1, burst = 0.5 }) end,
      "bad argument #1 to 'rate_limiter' (opts.burst must be a number >= 1, got 0.5)")
    assert.has_error(function() quench.rate_limiter({ rate = 1, per = 2 }) end,
      "bad argument #1 to 'rate_limiter' (unknown option 'per')")
    local lim = quench.rate_limiter({ rate = 1, burst = 2 })
    assert.has_error(function() lim:acquire(3) end,
      "bad argument #1 to 'acquire' (tokens must be a number > 0 and at most the burst (2), got 3)")
  end))
end)

describe("quench.retry", function()
  it("retries with exponential backoff until fn succeeds", T(function()
    local calls = {}
    local r = quench.retry(function()
      calls[#calls + 1] = quench.now()
      if #calls < 4 then error("flaky", 0) end
      return "ok", #calls
    end, { base = 1, factor = 2, jitter = "none" })
    assert.are.equal("ok", r)
    assert.are.same({ 0, 1, 3, 7 }, calls)
  end))

  it("caps the delay at max_delay", T(function()
    local calls = {}
    pcall(quench.retry, function() calls[#calls + 1] = quench.now(); error("x", 0) end,
      { base = 1, max_delay = 2, attempts = 5, jitter = "none" })
    assert.are.same({ 0, 1, 3, 5, 7 }, calls)
  end))

  it("gives up after opts.attempts, raising the last error", T(function()
    local n = 0
    local ok, err = pcall(quench.retry, function() n = n + 1; error("try " .. n, 0) end,
      { attempts = 3, base = 0.1, jitter = "none" })
    assert.is_false(ok)
    assert.are.equal("try 3", err)
    assert.are.equal(3, n)
  end))

  it("jitter keeps each delay within its bound", T(function()
    local calls = {}
    pcall(quench.retry, function() calls[#calls + 1] = quench.now(); error("x", 0) end,
      { base = 1, attempts = 4, jitter = "full" })
    for k = 2, #calls do
      local d = calls[k] - calls[k - 1]
      assert.is_true(d >= 0 and d <= 2 ^ (k - 2), "delay " .. d)
    end
  end))

  it("the predicate stops retrying an error it refuses", T(function()
    local n = 0
    local ok, err = pcall(quench.retry, function()
      n = n + 1
      error(n == 1 and "transient" or "fatal", 0)
    end, { retry_if = function(e) return e == "transient" end, jitter = "none" })
    assert.is_false(ok)
    assert.are.equal("fatal", err)
    assert.are.equal(2, n)
  end))

  it("stops at the deadline: no sleep past it, an attempt in progress is cut", T(function()
    local n = 0
    local ok, err = pcall(quench.retry, function() n = n + 1; error("x", 0) end,
      { timeout = 2.5, base = 1, jitter = "none", attempts = math.huge })
    assert.is_false(ok)
    assert.are.equal("x", err)
    assert.are.equal(2, n)                       -- at 0 and 1; the next would be at 3
    assert.are.equal(1, quench.now())
    ok, err = pcall(quench.retry, function() quench.sleep(10) end, { timeout = 1 })
    assert.is_false(ok)
    assert.is_true(quench.is_timeout(err))
    assert.are.equal(2, quench.now())
  end))

  it("stops at once when cancelled, without another attempt", T(function()
    local n = 0
    local h = quench.spawn(quench.retry, function() n = n + 1; error("x", 0) end,
      { base = 10, jitter = "none", attempts = math.huge })
    quench.sleep(1)
    h:cancel("stop")
    local ok, err = h:join()
    assert.is_false(ok)
    assert.is_true(quench.is_cancelled(err))
    assert.are.equal(1, n)
    assert.are.equal(1, quench.now())
  end))

  it("never retries a Cancelled raised by fn", T(function()
    local n = 0
    local ok, err = pcall(quench.retry, function()
      n = n + 1
      error(quench.cancelled_error("inner"))
    end)
    assert.is_false(ok)
    assert.is_true(quench.is_cancelled(err))
    assert.are.equal(1, n)
  end))

  it("on_retry sees each failure, attempt and delay", T(function()
    local seen = {}
    pcall(quench.retry, function() error("x", 0) end, { attempts = 3, base = 1, jitter = "none",
      on_retry = function(e, k, d) seen[#seen + 1] = { e, k, d } end })
    assert.are.same({ { "x", 1, 1 }, { "x", 2, 2 } }, seen)
  end))

  it("rejects bad arguments", T(function()
    assert.has_error(function() quench.retry(5) end,
      "bad argument #1 to 'retry' (function expected, got number)")
    assert.has_error(function() quench.retry(print, { attempts = 0 }) end,
      "bad argument #2 to 'retry' (opts.attempts must be a number >= 1 (math.huge: no limit), got 0)")
    assert.has_error(function() quench.retry(print, { jitter = "some" }) end,
      "bad argument #2 to 'retry' (opts.jitter must be \"full\", \"equal\" or \"none\", got string)")
    assert.has_error(function() quench.retry(print, { tries = 2 }) end,
      "bad argument #2 to 'retry' (unknown option 'tries')")
  end))
end)
