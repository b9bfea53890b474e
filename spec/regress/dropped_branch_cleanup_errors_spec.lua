-- Regressions: a cleanup error of a branch dropped from above (a nested
-- select, a graceful cancel, an abort) is raised, never swallowed.
local quench = require "quench"
local T = quench.test

describe("regression (dropped branches)", function()
  local function raising(e) return setmetatable({}, { __close = function() error(e, 0) end }) end

  it("a nested select dropped by the outer one: the inner branch's cleanup error is raised", T(function()
    local ok, err = pcall(quench.select,
      function()
        quench.select(function() local _ <close> = raising("inner cleanup"); quench.sleep(10) end)
      end,
      function() quench.sleep(1) end)
    assert.is_false(ok)
    assert.are.equal("inner cleanup", err)
  end))

  it("a select dropped by a graceful cancel: its branch cleanup error is raised, not Cancelled", T(function()
    local h = quench.spawn(function()
      quench.select(function() local _ <close> = raising("branch cleanup"); quench.sleep(10) end)
    end)
    quench.sleep(1)
    h:cancel("stop")
    assert.are.same({ false, "branch cleanup" }, { h:join() })
  end))

  it("a task aborted inside nested selects fails with the deepest cleanup error", T(function()
    local h = quench.spawn(function()
      quench.select(function()
        quench.select(function() local _ <close> = raising("deep"); quench.sleep(10) end)
      end)
    end)
    quench.sleep(1)
    h:abort()
    assert.are.same({ false, "deep" }, { h:join() })
  end))
end)
