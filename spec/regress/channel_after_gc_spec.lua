-- Regression for finding 8 of the random cancellation test and the API fuzzer
-- (docs/how-quench-is-tested.md, "What the tests have found"): a channel whose __gc ran
-- refuses to be used, and leaks nothing.
local quench = require "quench"

describe("regression finding 8", function()
  it("8: a channel whose __gc ran refuses to be used, and leaks nothing", function()
    local ch = quench.channel()
    ch:try_send("x")
    getmetatable(ch).__gc(ch)               -- as when a finalizer brings it back
    assert.has_error(function() ch:try_send(1) end,
      "calling 'try_send' on bad self (channel used after it was collected)")
    getmetatable(ch).__gc(ch)               -- twice is harmless
  end)
end)
