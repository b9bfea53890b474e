-- Cancellation callbacks (t:on_cancel) and linked tokens (quench.token_any).
local quench = require "quench"
local T = quench.test

describe("t:on_cancel", function()
  it("runs synchronously at the cancel, with the reason, before cancel returns", function()
    local t = quench.token()
    local seen
    t:on_cancel(function(reason) seen = reason end)
    assert.is_nil(seen)
    t:cancel("stop")
    assert.are.equal("stop", seen)
  end)

  it("runs at once when the token is already cancelled", function()
    local t = quench.token()
    t:cancel("early")
    local seen
    local reg = t:on_cancel(function(reason) seen = reason end)
    assert.are.equal("early", seen)
    assert.is_false(reg:remove())          -- already spent
  end)

  it("runs at most once, however often the token is cancelled", function()
    local root = quench.token()
    local t = root:child()
    local n = 0
    t:on_cancel(function() n = n + 1 end)
    t:cancel("a")
    t:cancel("b")
    root:cancel("c")
    assert.are.equal(1, n)
  end)

  it("a registration removed before the cancel never runs", function()
    local t = quench.token()
    local ran = false
    local reg = t:on_cancel(function() ran = true end)
    assert.is_true(reg:remove())
    assert.is_false(reg:remove())
    t:cancel()
    assert.is_false(ran)
  end)

  it("is <close>-able: leaving the block removes it", function()
    local t = quench.token()
    local ran = false
    do
      local _reg <close> = t:on_cancel(function() ran = true end)
    end
    t:cancel()
    assert.is_false(ran)
  end)

  it("fires for a descendant when an ancestor is cancelled, in order", function()
    local root = quench.token()
    local child = root:child()
    local log = {}
    root:on_cancel(function(r) log[#log + 1] = "root " .. r end)
    child:on_cancel(function(r) log[#log + 1] = "child " .. r end)
    root:on_cancel(function(r) log[#log + 1] = "root2 " .. r end)
    root:cancel("x")
    assert.are.same({ "root x", "root2 x", "child x" }, log)
  end)

  it("a callback may remove a later one of the same cancel: it does not run", function()
    local t = quench.token()
    local second
    local ran = false
    t:on_cancel(function() assert.is_true(second:remove()) end)
    second = t:on_cancel(function() ran = true end)
    t:cancel()
    assert.is_false(ran)
  end)

  it("a callback may cancel other tokens; their callbacks run before cancel returns", function()
    local a, b = quench.token(), quench.token()
    local log = {}
    a:on_cancel(function() log[#log + 1] = "a"; b:cancel("from a") end)
    b:on_cancel(function(r) log[#log + 1] = r end)
    a:cancel()
    assert.are.same({ "a", "from a" }, log)
  end)

  it("a callback's error goes to opts.on_warning and stops neither the cancel nor the others",
    function()
    local warnings = {}
    local ran, first
    quench.run({ on_warning = function(m) warnings[#warnings + 1] = m end }, function()
      local t = quench.token()
      t:on_cancel(function() error("boom", 0) end)
      t:on_cancel(function() ran = true end)
      first = t:cancel()
    end)
    assert.is_true(first)
    assert.is_true(ran)
    assert.are.equal(1, #warnings)
    assert.matches("on_cancel: a callback raised: boom", warnings[1], 1, true)
  end)

  it("a token guard runs the callbacks too", function()
    local t = quench.token()
    local ran = false
    t:on_cancel(function() ran = true end)
    do local _g <close> = t:guard() end
    assert.is_true(ran)
  end)

  it("stops a callback-based job when a task's scope is cancelled", T(function()
    -- the pattern it exists for: a timer-like job started by callback
    local t = quench.token()
    local stopped = false
    local h = t:spawn(function()
      local _reg <close> = t:on_cancel(function() stopped = true end)
      quench.sleep(10)
    end)
    quench.sleep(1)
    t:cancel("done")
    assert.is_true(stopped)
    assert.is_false((h:join()))
  end))

  it("a registration keeps nothing alive once spent", function()
    local t = quench.token()
    local weak = setmetatable({}, { __mode = "k" })
    t:on_cancel((function()
      local fn = function() end
      weak[fn] = true
      return fn
    end)())
    t:cancel()
    collectgarbage(); collectgarbage()
    assert.is_nil(next(weak))
  end)

  it("rejects a bad callback and a bad self", function()
    local t = quench.token()
    assert.has_error(function() t:on_cancel(42) end,
      "bad argument #1 to 'on_cancel' (function expected, got number)")
    assert.has_error(function() t.on_cancel(nil, print) end)
  end)
end)

describe("quench.token_any", function()
  it("is cancelled when any source is, with that source's reason", function()
    local a, b, c = quench.token(), quench.token(), quench.token()
    local any = quench.token_any(a, b, c)
    assert.is_false(any:is_cancelled())
    b:cancel("b went")
    assert.is_true(any:is_cancelled())
    assert.are.equal("b went", any:reason())
    assert.is_false(a:is_cancelled())
  end)

  it("is born cancelled when a source already is", function()
    local a, b = quench.token(), quench.token()
    b:cancel("early")
    local any = quench.token_any(a, b)
    assert.is_true(any:is_cancelled())
    assert.are.equal("early", any:reason())
  end)

  it("follows a source's ancestor, and cancels its own children", function()
    local root = quench.token()
    local any = quench.token_any(root:child(), quench.token())
    local kid = any:child()
    root:cancel("root")
    assert.is_true(kid:is_cancelled())
  end)

  it("cancelling it never cancels a source and drops its links", function()
    local a = quench.token()
    local any = quench.token_any(a)
    local n = 0
    any:on_cancel(function() n = n + 1 end)
    any:cancel("mine")
    a:cancel("later")
    assert.are.equal(1, n)
    assert.are.equal("mine", any:reason())
    assert.is_false(a:reason() == "mine")
  end)

  it("binds tasks like any token", T(function()
    local a, b = quench.token(), quench.token()
    local h = quench.token_any(a, b):spawn(function() quench.sleep(100) end)
    quench.sleep(1)
    a:cancel("a")
    local ok, err = h:join()
    assert.is_false(ok)
    assert.is_true(quench.is_cancelled(err))
  end))

  it("rejects what is not a token", function()
    assert.has_error(function() quench.token_any() end,
      "bad argument #1 to 'token_any' (quench.token expected, got no value)")
    assert.has_error(function() quench.token_any(quench.token(), {}) end,
      "bad argument #2 to 'token_any' (quench.token expected, got table)")
  end)
end)

describe("t:on_cancel callbacks that try to wait", function()
  it("are reported, and the cancel still completes", function()
    local warnings = {}
    local done
    quench.run({ clock = "virtual", on_warning = function(m) warnings[#warnings + 1] = m end },
      function()
        local t = quench.token()
        t:on_cancel(function() quench.sleep(1) end)
        t:on_cancel(function() quench.spawn(function() quench.sleep(1); done = quench.now() end) end)
        t:cancel()
        assert(t:is_cancelled())
        quench.sleep(2)                          -- let the spawned task finish
      end)
    assert.are.equal(1, #warnings)
    assert.matches("on_cancel: a callback raised", warnings[1], 1, true)
    assert.are.equal(1, done)                    -- async work: a task spawned from the callback
  end)
end)
