-- Regression for finding 4 of the random cancellation test and the API fuzzer
-- (docs/how-quench-is-tested.md, "What the tests have found"): a quench.guard function may
-- wait when its block ends normally.
local quench = require "quench"
local T = quench.test

describe("regression finding 4", function()
  it("4: a quench.guard function may wait when its block ends normally", T(function()
    local waited = false
    do
      local _ <close> = quench.guard(function() quench.sleep(1); waited = true end)
    end
    assert.is_true(waited)
    assert.are.equal(1, quench.now())
  end))
end)
