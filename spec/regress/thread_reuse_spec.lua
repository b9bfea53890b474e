-- Threads are recycled from a pool. Lua 5.4.4's lua_resetthread keeps the
-- message handler of a thread closed while suspended inside xpcall, so a
-- later task on that thread had every error turned into "error in error
-- handling". A thread closed while suspended is no longer pooled.
local quench = require "quench"

local function handler(m) return "handled: " .. tostring(m) end

-- The errors of n fresh tasks, as join reports them.
local function errors_of_next_tasks(n)
  local errs = {}
  for i = 1, n do
    local h = quench.spawn(function() error("boom " .. i, 0) end)
    local ok, err = h:join()
    assert.is_false(ok)
    errs[i] = err
  end
  return errs
end

describe("thread reuse", function()
  it("a task aborted while waiting inside xpcall leaves no handler to later tasks",
    quench.test(function()
      local a = quench.spawn(function()
        xpcall(function() quench.sleep(10) end, handler)
      end)
      quench.yield()                       -- a waits in its sleep, inside xpcall
      a:abort()
      assert.are.same({ "boom 1", "boom 2", "boom 3" }, errors_of_next_tasks(3))
    end))

  it("a select branch dropped while waiting inside xpcall leaves no handler either",
    quench.test(function()
      local ok = quench.timeout(1, function()
        xpcall(function() quench.sleep(10) end, handler)
      end)
      assert.is_false(ok)                  -- the branch was dropped in its sleep
      assert.are.same({ "boom 1", "boom 2" }, errors_of_next_tasks(2))
      local raised = { pcall(quench.timeout, 1, function() error("branch boom", 0) end) }
      assert.are.same({ false, "branch boom" }, raised)    -- a branch on a fresh thread too
    end))

  it("a task that yields bare inside xpcall fails, and leaves no handler", quench.test(function()
    local h = quench.spawn(function() xpcall(coroutine.yield, handler) end)
    local ok, err = h:join()
    assert.is_false(ok)
    assert.matches("coroutine.yield", tostring(err), 1, true)
    assert.are.same({ "boom 1" }, errors_of_next_tasks(1))
  end))
end)
