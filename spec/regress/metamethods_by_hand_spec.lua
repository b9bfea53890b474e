-- Regression for finding 2 of the random cancellation test and the API fuzzer
-- (docs/how-quench-is-tested.md, "What the tests have found"): metamethods called by hand
-- with a wrong argument, or on a live task, do nothing.
local quench = require "quench"
local T = quench.test

describe("regression finding 2", function()
  it("2: metamethods called by hand with a wrong argument, or on a live task, do nothing", T(function()
    -- only a failed task's handle has a finalizer (its failure may still be
    -- reported when it is collected); it gets it when its task ends
    local failed = quench.spawn(error, "on purpose")
    assert.is_false((failed:join()))                 -- observed: not reported
    local task_gc = getmetatable(failed).__gc
    assert.is_function(task_gc)
    for _, gc in ipairs({ getmetatable(quench.channel()).__gc, getmetatable(quench.token()).__gc,
                          task_gc }) do
      gc("x"); gc(nil); gc(42)
    end
    local h = quench.spawn(function() quench.sleep(1); return "still here" end)
    assert.is_nil(getmetatable(h).__gc)
    task_gc(h)
    assert.are.same({ true, "still here" }, { h:join() })
    assert.is_nil(getmetatable(h).__gc)              -- ended well: nothing to finalise
  end))
end)
