-- Regression for finding C, D of spec/alloc_fail_spec.lua (docs/how-quench-is-tested.md,
-- "Allocation failures", lists them by letter): send_op whose commit cannot
-- grow the buffer raises, and its permit goes back.
local quench = require "quench"
local alloc_fail = require "helpers.alloc_fail"
local is_oom = alloc_fail.is_oom
local fail_after_mark = alloc_fail.fail_after_mark

describe("allocation failure regression C, D", function()
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
end)
