-- Regression for finding 3 of the random cancellation test and the API fuzzer
-- (docs/how-quench-is-tested.md, "What the tests have found"): advance never moves the
-- virtual clock backwards.
local quench = require "quench"

describe("regression finding 3", function()
  it("3: advance never moves the virtual clock backwards", function()
    quench.run({ clock = "manual" }, function()
      quench.advance(1e10)
      local t = quench.now()
      quench.advance(1e10)
      quench.advance(1e300)
      assert.is_true(quench.now() >= t)
    end)
  end)
end)
