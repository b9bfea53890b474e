-- Regression for finding 2 of the random cancellation test and the API fuzzer
-- (docs/how-quench-is-tested.md, "What the tests have found"): metamethods called by hand
-- with a wrong argument, or on a live task, do nothing.
local quench = require "quench"
local T = quench.test

describe("regression finding 2", function()
  it("2: metamethods called by hand with a wrong argument, or on a live task, do nothing", T(function()
    for _, obj in ipairs({ quench.channel(), quench.token(), quench.spawn(quench.sleep, 1) }) do
      local gc = getmetatable(obj).__gc
      gc("x"); gc(nil); gc(42)
    end
    local h = quench.spawn(function() quench.sleep(1); return "still here" end)
    getmetatable(h).__gc(h)
    assert.are.same({ true, "still here" }, { h:join() })
  end))
end)
