-- Regression for finding 1 of the random cancellation test and the API fuzzer
-- (docs/how-quench-is-tested.md, "What the tests have found"): a loser's cleanup error does
-- not swallow the winner's lock or message.
local quench = require "quench"
local T = quench.test

local function raising_close()
  return setmetatable({}, { __close = function() error("loser cleanup", 0) end })
end

describe("regression finding 1", function()
  it("1: a loser's cleanup error does not swallow the winner's lock or message", T(function()
    local m = quench.mutex()
    local ok, err = pcall(quench.select_biased,
      function() local _ <close> = raising_close(); quench.sleep(1) end, m:lock_op())
    assert.is_false(ok)
    assert.are.equal("loser cleanup", err)
    assert.is_false(m:is_locked())            -- the permit went back
    local ch = quench.channel()
    ch:send("kept")
    ok = pcall(quench.select_biased,
      function() local _ <close> = raising_close(); quench.sleep(1) end, ch:recv_op())
    assert.is_false(ok)
    assert.are.equal("kept", ch:try_recv())   -- the message went back
  end))
end)
