-- Task-local context (quench.context).
local quench = require "quench"
local T = quench.test
local context = quench.context

describe("quench.context", function()
  it("binds a value for the extent of with, and unbinds it after", T(function()
    assert.is_nil(context.get("id"))
    local inside = context.with("id", 7, function() return context.get("id") end)
    assert.are.equal(7, inside)
    assert.is_nil(context.get("id"))
    assert.are.equal("dflt", context.get("id", "dflt"))
  end))

  it("the innermost binding wins, and the outer one comes back", T(function()
    context.with("k", "outer", function()
      context.with("k", "inner", function() assert.are.equal("inner", context.get("k")) end)
      assert.are.equal("outer", context.get("k"))
    end)
  end))

  it("returns fn's results and passes its arguments", T(function()
    local a, b = context.with("k", 1, function(x, y) return y, x end, "x", "y")
    assert.are.equal("y", a)
    assert.are.equal("x", b)
  end))

  it("is seen by tasks spawned inside, at any depth", T(function()
    local seen = {}
    context.with("req", "r1", function()
      local h = quench.spawn(function()
        seen[1] = context.get("req")
        quench.spawn(function() seen[2] = context.get("req") end):join()
      end)
      h:join()
    end)
    assert.are.same({ "r1", "r1" }, seen)
  end))

  it("a spawn keeps the binding of its spawn time, after with has returned", T(function()
    local h = context.with("req", "r1", function()
      return quench.spawn(function() quench.sleep(1); return context.get("req") end)
    end)
    assert.is_nil(context.get("req"))
    assert.are.same({ true, "r1" }, { h:join() })
  end))

  it("a child's change is not seen by its parent", T(function()
    context.with("k", "parent", function()
      local h = quench.spawn(function()
        context.with("k", "child", function() quench.sleep(2) end)
      end)
      quench.sleep(1)                        -- the child is inside its with now
      assert.are.equal("parent", context.get("k"))
      h:join()
    end)
  end))

  it("a parent's later change is not seen by a running child", T(function()
    local got
    context.with("k", 1, function()
      local h = quench.spawn(function() quench.sleep(2); got = context.get("k") end)
      context.with("k", 2, function() quench.sleep(3) end)
      h:join()
    end)
    assert.are.equal(1, got)
  end))

  it("select branches and timeouts see the enclosing binding; their own stay theirs",
    T(function()
      context.with("k", "task", function()
        local _, v = quench.timeout(1, function() return context.get("k") end)
        assert.are.equal("task", v)
        local results = {}
        quench.select(
          function() context.with("k", "a", function() quench.sleep(1); results.a = context.get("k") end) end,
          function() context.with("k", "b", function() quench.sleep(2) end) end)
        assert.are.equal("a", results.a)
        assert.are.equal("task", context.get("k"))
      end)
    end))

  it("a with dropped by a cancel restores the previous binding", T(function()
    context.with("k", "outer", function()
      quench.timeout(1, function() context.with("k", "inner", quench.sleep, 5) end)
      assert.are.equal("outer", context.get("k"))
    end)
  end))

  it("keys are compared by identity; context.key makes private keys", T(function()
    local k1, k2 = context.key("logger"), context.key("logger")
    assert.are.equal("quench.context.key (logger)", tostring(k1))
    context.with(k1, "mine", function()
      assert.is_nil(context.get(k2))
      assert.are.equal("mine", context.get(k1))
    end)
  end))

  it("outside a task: get says nil, with raises", function()
    assert.is_nil(context.get("k"))
    assert.has_error(function() context.with("k", 1, function() end) end,
      "quench.context.with: not inside a task")
  end)

  it("rejects bad arguments", T(function()
    assert.has_error(function() context.with(nil, 1, print) end,
      "bad argument #1 to 'with' (key expected, got nil)")
    assert.has_error(function() context.with("k", 1, 5) end,
      "bad argument #3 to 'with' (function expected, got number)")
    assert.has_error(function() context.key(5) end,
      "bad argument #1 to 'key' (string expected, got number)")
  end))
end)
