-- Regression for finding 5 of the random cancellation test and the API fuzzer
-- (docs/how-quench-is-tested.md, "What the tests have found"): hooks and finalizers may
-- call quench.
local quench = require "quench"

describe("regression finding 5", function()
  it("5: hooks and finalizers may call quench", function()
    local spawned
    quench.run({ clock = "virtual", on_task_error = function()
      spawned = quench.spawn(function() return "from the hook" end)
    end, on_warning = function() quench.spawn(function() end) end, slow_task = 1e-9 }, function()
      quench.spawn(error, "unjoined"):detach()
      quench.yield()
      quench.yield()
      for i = 1, 200 do
        setmetatable({}, { __gc = function() pcall(quench.spawn, function() return i end) end })
      end
      collectgarbage()
      quench.yield()
      assert.are.same({ true, "from the hook" }, { spawned:join() })
    end)
  end)
end)
