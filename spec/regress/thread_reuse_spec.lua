-- Threads are recycled from a pool. Lua 5.4.4's lua_resetthread keeps the
-- message handler of a thread closed while suspended inside xpcall, so a
-- later task on that thread had every error turned into "error in error
-- handling". A thread closed while suspended is pooled only when no C
-- function (xpcall, pcall, ...) lies under the quench function it waits in.
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

-- The thread of a task that waits in `wait` (called in the task), aborted
-- there, and the thread of the next task spawned.
local function threads_around_abort(wait)
  local first, later
  local a = quench.spawn(function()
    first = coroutine.running()
    wait()
  end)
  quench.yield()
  a:abort()
  quench.spawn(function() later = coroutine.running() end):join()
  return first, later
end

describe("thread reuse", function()
  it("a task aborted while waiting under Lua functions only gives its thread to a later task",
    quench.test(function()
      local function deeper() quench.sleep(10) end
      local first, later = threads_around_abort(function() deeper() end)
      assert.are.equal(first, later)
      assert.are.same({ "boom 1", "boom 2" }, errors_of_next_tasks(2))
    end))

  it("so does a select branch dropped while waiting under Lua functions only",
    quench.test(function()
      local first, later
      assert.is_false(quench.timeout(1, function()
        first = coroutine.running()
        quench.sleep(10)
      end))
      quench.spawn(function() later = coroutine.running() end):join()
      assert.are.equal(first, later)
      assert.are.same({ "boom 1" }, errors_of_next_tasks(1))
    end))

  it("a task aborted while waiting inside pcall or xpcall keeps its thread out of the pool",
    quench.test(function()
      local first, later = threads_around_abort(function() pcall(quench.sleep, 10) end)
      assert.are_not.equal(first, later)
      first, later = threads_around_abort(function()
        xpcall(function() quench.sleep(10) end, handler)
      end)
      assert.are_not.equal(first, later)
      assert.are.same({ "boom 1", "boom 2" }, errors_of_next_tasks(2))
    end))

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
