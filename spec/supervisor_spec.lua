-- Supervisor scopes: a child's failure does not cancel its siblings; the
-- failures are collected and reported.
local quench = require "quench"
local T = quench.test

describe("supervisor scopes", function()
  it("a failing child does not cancel its siblings; the failure is raised at the end",
    T(function()
      local finished = false
      local ok, err = pcall(quench.supervisor, function(s)
        s:spawn(function() quench.sleep(1); error("first", 0) end)
        s:spawn(function() quench.sleep(5); finished = true end)
      end)
      assert.is_false(ok)
      assert.are.equal("first", err)
      assert.is_true(finished)
      assert.are.equal(5, quench.now())
    end))

  it("collects every failure in a multiple error, in order", T(function()
    local ok, err = pcall(quench.scope, { supervise = true }, function(s)
      s:spawn(function() quench.sleep(2); error("b", 0) end)
      s:spawn(function() quench.sleep(1); error("a", 0) end)
      s:spawn(quench.sleep, 3)
    end)
    assert.is_false(ok)
    assert.are.equal("multiple", err.kind)
    assert.are.same({ "a", "b" }, err.errors)
    assert.are.equal(3, quench.now())
  end))

  it("on_failure takes the failures: the scope returns normally", T(function()
    local seen = {}
    local r = quench.scope({ supervise = true, on_failure = function(e, h)
      seen[#seen + 1] = e
      assert.is_not_nil(h)
    end }, function(s)
      s:spawn(function() error("x", 0) end)
      s:spawn(function() quench.sleep(1); error("y", 0) end)
      quench.sleep(2)
      return "body"
    end)
    assert.are.equal("body", r)
    assert.are.same({ "x", "y" }, seen)
  end))

  it("a failing on_failure fails the scope and cancels the rest", T(function()
    local ok, err = pcall(quench.scope, { supervise = true,
      on_failure = function() error("handler", 0) end }, function(s)
        s:spawn(function() error("x", 0) end)
        s:spawn(quench.sleep, 100)
      end)
    assert.is_false(ok)
    assert.are.equal("handler", err)
    assert.is_true(quench.now() < 100)
  end))

  it("a failure of the body itself cancels the children", T(function()
    local ok, err = pcall(quench.supervisor, function(s)
      s:spawn(quench.sleep, 100)
      quench.sleep(1)
      error("body", 0)
    end)
    assert.is_false(ok)
    assert.are.equal("body", err)
    assert.are.equal(1, quench.now())
  end))

  it("a cancel of its task still cancels every child", T(function()
    local h = quench.spawn(quench.supervisor, function(s)
      s:spawn(quench.sleep, 100)
      s:spawn(quench.sleep, 100)
    end)
    quench.sleep(1)
    h:cancel("stop")
    local ok, err = h:join()
    assert.is_false(ok)
    assert.are.equal("stop", err.reason)
    assert.are.equal(1, quench.now())
  end))

  it("with a deadline: siblings still run until the deadline", T(function()
    local ran = 0
    local ok, err = pcall(quench.scope, { supervise = true, timeout = 3 }, function(s)
      s:spawn(function() error("x", 0) end)
      s:spawn(function() quench.sleep(2); ran = ran + 1 end)
      s:spawn(quench.sleep, 10)
    end)
    assert.is_false(ok)
    assert.are.equal("x", err)                 -- the failure wins over the deadline
    assert.are.equal(1, ran)
    assert.are.equal(3, quench.now())
  end))

  it("rejects bad options", T(function()
    local body = function() end
    assert.has_error(function() quench.scope({ supervise = 1 }, body) end,
      "bad argument #1 to 'scope' (opts.supervise must be a boolean, got number)")
    assert.has_error(function() quench.scope({ on_failure = print }, body) end,
      "bad argument #1 to 'scope' (opts.on_failure needs opts.supervise = true)")
    assert.has_error(function() quench.scope({ supervise = true, on_failure = 1 }, body) end,
      "bad argument #1 to 'scope' (opts.on_failure must be a function, got number)")
    assert.has_error(function() quench.supervisor(1) end,
      "bad argument #1 to 'supervisor' (function expected, got number)")
  end))
end)
