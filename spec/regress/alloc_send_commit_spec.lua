-- Regression for finding C of spec/alloc_fail_spec.lua (docs/how-quench-is-tested.md,
-- "Allocation failures", lists them by letter): a send whose commit cannot
-- grow the buffer gives its permit back.
local quench = require "quench"
local alloc_fail = require "helpers.alloc_fail"
local is_oom = alloc_fail.is_oom
local fail_after_mark = alloc_fail.fail_after_mark

describe("allocation failure regression C", function()
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
end)
