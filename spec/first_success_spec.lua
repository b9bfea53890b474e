-- quench.first_success: the first branch that succeeds wins; fails only
-- when every branch failed, with every error kept.
local quench = require "quench"
local T = quench.test

describe("quench.first_success", function()
  it("returns the first success (index and results) and aborts the others", T(function()
    local cleaned = false
    local i, a, b = quench.first_success(
      function() quench.sleep(3); return "slow" end,
      function() quench.sleep(1); return "fast", 2 end,
      function()
        local _c <close> = quench.guard(function() cleaned = true end)
        quench.sleep(10)
      end)
    assert.are.equal(2, i)
    assert.are.equal("fast", a)
    assert.are.equal(2, b)
    assert.is_true(cleaned)                      -- aborted before it returned
    assert.are.equal(1, quench.now())
  end))

  it("a failure does not win: a later success does", T(function()
    local i, v = quench.first_success(
      function() quench.sleep(1); error("replica 1 down", 0) end,
      function() quench.sleep(2); return "replica 2" end)
    assert.are.equal(2, i)
    assert.are.equal("replica 2", v)
    assert.are.equal(2, quench.now())
  end))

  it("fails only when all failed, keeping every error in argument order", T(function()
    local ok, err = pcall(quench.first_success,
      function() quench.sleep(2); error("a", 0) end,
      function() quench.sleep(1); error({ code = 7 }) end,
      function() error("c", 0) end)
    assert.is_false(ok)
    assert.are.equal("multiple", err.kind)
    assert.are.equal(3, err.n)
    assert.are.equal("a", err.errors[1])
    assert.are.equal(7, err.errors[2].code)
    assert.are.equal("c", err.errors[3])
    assert.matches("all 3 failed", tostring(err), 1, true)
    assert.are.equal(2, quench.now())
  end))

  it("takes task handles too", T(function()
    local h = quench.spawn(function() quench.sleep(1); return "handle" end)
    local i, v = quench.first_success(function() quench.sleep(5) end, h)
    assert.are.equal(2, i)
    assert.are.equal("handle", v)
  end))

  it("dropped (here by a timeout), it aborts every branch", T(function()
    local aborted = 0
    local function branch()
      local _c <close> = quench.guard(function() aborted = aborted + 1 end)
      quench.sleep(10)
    end
    local ok = quench.timeout(1, quench.first_success, branch, branch)
    assert.is_false(ok)
    assert.are.equal(2, aborted)
  end))

  it("rejects bad arguments", T(function()
    assert.has_error(function() quench.first_success() end,
      "bad argument #1 to 'first_success' (function or task expected, got no value)")
    assert.has_error(function() quench.first_success(print, 5) end,
      "bad argument #2 to 'first_success' (function or task expected, got number)")
  end))
end)
