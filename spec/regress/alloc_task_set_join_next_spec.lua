-- Regression for finding E of spec/alloc_fail_spec.lua (docs/how-quench-is-tested.md,
-- "Allocation failures", lists them by letter): a task set whose tasks end
-- while memory is short never hangs join_next.
local quench = require "quench"
local alloc_fail = require "helpers.alloc_fail"
local is_oom = alloc_fail.is_oom
local fail_after_mark = alloc_fail.fail_after_mark

describe("allocation failure regression E", function()
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
