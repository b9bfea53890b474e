-- Regressions for the bugs spec/alloc_fail_spec.lua found by failing the
-- core's allocations (docs/testing.md, "Allocation failures", lists them
-- by letter). Each test fails every allocation in a window after a mark,
-- one run per allocation.
local quench = require "quench"

local function is_oom(e) return tostring(e):find("out of memory", 1, true) ~= nil end

-- Run body(mark) once to learn the core's allocation count where it calls
-- mark(), then once for each of the next n allocations failing. Calls
-- check(ok, err_or_result) for each of those runs; returns how many raised.
local function fail_after_mark(n, body, check)
  local marked
  quench.run({ clock = "virtual", seed = 1 }, body, function() marked = quench.stats().allocs end)
  local raised = 0
  for k = marked + 1, marked + n do
    local ok, res = pcall(quench.run, { clock = "virtual", seed = 1, fail_alloc = k }, body,
      function() end)
    if not ok then
      raised = raised + 1
      assert.is_true(is_oom(res), "fail_alloc = " .. k .. ": " .. tostring(res))
    end
    check(ok, res, k)
  end
  return raised
end

describe("allocation failure regressions", function()
  it("A: a sleep_op that cannot arm its timer raises; it never wins a select early", function()
    local seen = {}
    fail_after_mark(4, function(mark)
      local ch = quench.channel()
      mark()
      local ok, err = pcall(quench.select, ch:recv_op(), quench.sleep_op(100))
      seen[#seen + 1] = ok and ("won at " .. quench.now()) or tostring(err)
    end, function() end)
    assert.are.equal(5, #seen)                   -- the counting run, then 4
    for _, s in ipairs(seen) do
      assert.is_true(s == "won at 100.0" or is_oom(s), s)
    end
    local timer = false
    for _, s in ipairs(seen) do
      timer = timer or s:find("sleep_op: out of memory (cannot arm a timer)", 1, true) ~= nil
    end
    assert.is_true(timer, "no run failed to arm the timer")
  end)

  it("B: h:stop whose grace timer cannot be armed raises; it does not abort at once", function()
    local results = {}
    fail_after_mark(6, function(mark)
      local h = quench.spawn(function()
        local ok = pcall(quench.sleep, 100)
        assert(not ok)
        quench.shield(quench.sleep, 1)   -- cleanup within the grace period
        return "cleaned"
      end)
      for _ = 1, 63 do quench.spawn(quench.sleep, 1000) end
      quench.yield()                              -- 64 timers: the heap is full
      mark()
      local ok, v = pcall(h.stop, h, 5)
      local _, r = h:join()                       -- "cleaned", or its own out of memory
      results[#results + 1] = { ok = ok, v = v, r = r }
    end, function() end)
    local timer = false
    for _, r in ipairs(results) do          -- never aborted early: never a Cancelled
      assert.is_true(r.r == "cleaned" or is_oom(r.r), tostring(r.r))
      if not r.ok then
        assert.is_true(is_oom(r.v), tostring(r.v))
        timer = timer or tostring(r.v):find("cannot arm a timer", 1, true) ~= nil
      end
    end
    assert.is_true(timer, "no run failed to arm the grace timer")
  end)

  it("C: a send whose commit cannot grow the buffer gives its permit back", function()
    local runs = 0
    fail_after_mark(3, function(mark)
      local ch = quench.channel(1)
      mark()
      local ok, err = pcall(ch.send, ch, "a")     -- the first send allocates the buffer
      if not ok then
        assert.is_true(is_oom(err), tostring(err))
        assert.are.equal(0, ch:len())
        assert.is_true(ch:try_send("b"))         -- the permit came back: room for one
        runs = runs + 1
      end
    end, function() end)
    assert.is_true(runs >= 1, "no send failed")
  end)

  it("C, D: send_op whose commit cannot grow the buffer raises, and its permit goes back", function()
    local runs = 0
    fail_after_mark(4, function(mark)
      local ch = quench.channel(1)
      mark()
      local ok, err = pcall(quench.select, ch:send_op("a"), quench.sleep_op(1))
      if not ok and tostring(err):find("send_op: out of memory", 1, true) then
        assert.are.equal(0, ch:len())
        assert.is_true(ch:try_send("b"))
        runs = runs + 1
      elseif not ok then
        assert.is_true(is_oom(err), tostring(err))
      else
        assert.are.equal(1, ch:len())            -- it said sent: it was
      end
    end, function() end)
    assert.is_true(runs >= 1, "no send_op commit failed")
  end)

  it("E: a task set whose tasks end while memory is short never hangs join_next", function()
    fail_after_mark(12, function(mark)
      local set = quench.task_set()
      mark()
      for i = 1, 3 do set:spawn(function() quench.sleep(i); return i end) end
      local n = 0
      while set:len() > 0 do
        local _, ok, v = set:join_next()
        if not ok then error(v, 0) end
        n = n + v
      end
      assert(n == 6)
    end, function(ok, res, k)
      assert.is_true(ok or is_oom(res), "fail_alloc = " .. k .. ": " .. tostring(res))
    end)
  end)
end)
