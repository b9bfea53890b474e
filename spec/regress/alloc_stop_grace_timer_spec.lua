-- Regression for finding B of spec/alloc_fail_spec.lua (docs/how-quench-is-tested.md,
-- "Allocation failures", lists them by letter): h:stop whose grace timer
-- cannot be armed raises; it does not abort at once.
local quench = require "quench"
local alloc_fail = require "helpers.alloc_fail"
local is_oom = alloc_fail.is_oom
local fail_after_mark = alloc_fail.fail_after_mark

describe("allocation failure regression B", function()
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
end)
