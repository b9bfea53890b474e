-- Regression for finding A of spec/alloc_fail_spec.lua (docs/how-quench-is-tested.md,
-- "Allocation failures", lists them by letter): a sleep_op that cannot arm its
-- timer raises; it never wins a select early.
local quench = require "quench"
local alloc_fail = require "helpers.alloc_fail"
local is_oom = alloc_fail.is_oom
local fail_after_mark = alloc_fail.fail_after_mark

describe("allocation failure regression A", function()
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
end)
