-- Regression for finding 4 of the random cancellation test and the API fuzzer
-- (docs/how-quench-is-tested.md, "What the tests have found"): waiting where the coroutine
-- cannot yield is a clear error, and leaves nothing behind.
local quench = require "quench"
local T = quench.test

describe("regression finding 4", function()
  it("4: waiting where the coroutine cannot yield is a clear error, and leaves nothing behind", T(function()
    local n = quench.notify()
    local ok, err = pcall(string.gsub, "a", "a", function() n:notified() end)
    assert.is_false(ok)
    assert.matches("quench.notify:notified: cannot wait here", err)
    n:notify_all()                            -- no stale waiter to wake
    local _, e2 = pcall(table.sort, { 2, 1 }, function() quench.sleep(1) end)
    assert.matches("quench.sleep: cannot wait here", e2)
  end))
end)
