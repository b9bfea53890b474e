-- Scope deadlines with graceful cancellation: quench.scope{timeout | deadline, grace},
-- s:set_deadline, quench.current_deadline.
local quench = require "quench"
local T = quench.test

describe("scope deadlines", function()
  it("at the deadline the children are cancelled gracefully, then the scope raises Timeout",
    T(function()
      local log = {}
      local ok, err = pcall(quench.scope, { timeout = 5, grace = 2 }, function(s)
        s:spawn(function()
          local _, e = pcall(quench.sleep, 100)
          log[#log + 1] = { quench.now(), quench.is_cancelled(e) and quench.is_timeout(e.reason) }
          quench.shield(quench.sleep, 1)          -- cleanup within the grace
          log[#log + 1] = { quench.now(), "cleaned" }
        end)
        quench.sleep(100)
      end)
      assert.is_false(ok)
      assert.is_true(quench.is_timeout(err))
      assert.are.same({ { 5, true }, { 6, "cleaned" } }, log)
      assert.are.equal(6, quench.now())
    end))

  it("aborts what is left after the grace", T(function()
    local cleaned = false
    local ok = pcall(quench.scope, { timeout = 1, grace = 2 }, function(s)
      s:spawn(function()
        local _c <close> = quench.guard(function() cleaned = true end)
        pcall(quench.sleep, 100)
        quench.shield(quench.sleep, 50)           -- ignores the grace
      end)
    end)
    assert.is_false(ok)
    assert.is_true(cleaned)
    assert.are.equal(3, quench.now())
  end))

  it("a scope inside gets its grace: the body is cancelled, not dropped", T(function()
    local done_at
    pcall(quench.scope, { timeout = 5, grace = 10 }, function()
      quench.scope({ grace = 3 }, function(inner)
        inner:spawn(function()
          pcall(quench.sleep, 100)
          quench.shield(quench.sleep, 2)
          done_at = quench.now()
        end)
      end)
    end)
    assert.are.equal(7, done_at)
  end))

  it("returns the body's results when everything ends before the deadline", T(function()
    local a, b = quench.scope({ timeout = 5 }, function(s, x)
      s:spawn(quench.sleep, 1)
      return x, "two"
    end, "one")
    assert.are.equal("one", a)
    assert.are.equal("two", b)
    assert.are.equal(1, quench.now())
  end))

  it("takes an absolute deadline", T(function()
    quench.sleep(2)
    local ok, err = pcall(quench.scope, { deadline = 3 }, function() quench.sleep(10) end)
    assert.is_false(ok)
    assert.is_true(quench.is_timeout(err))
    assert.are.equal(3, quench.now())
  end))

  it("the deadline can be moved later while the scope runs", T(function()
    local r = quench.scope({ timeout = 2 }, function(s)
      s:set_deadline(quench.now() + 10)
      quench.sleep(5)
      return "done"
    end)
    assert.are.equal("done", r)
    assert.are.equal(5, quench.now())
  end))

  it("the deadline can be moved earlier, also from another task", T(function()
    local scope_of
    local h = quench.spawn(function()
      return pcall(quench.scope, { deadline = math.huge }, function(s)
        scope_of = s
        quench.sleep(100)
      end)
    end)
    quench.sleep(1)
    assert.are.equal(math.huge, scope_of:deadline())
    scope_of:set_deadline(4)
    local _, ok, err = h:join()
    assert.is_false(ok)
    assert.is_true(quench.is_timeout(err))
    assert.is_true(scope_of:timed_out())
    assert.are.equal(4, quench.now())
  end))

  it("current_deadline is the earliest of the enclosing scopes, in children too", T(function()
    assert.are.equal(math.huge, quench.current_deadline())
    quench.scope({ deadline = 10 }, function(outer)
      assert.are.equal(10, quench.current_deadline())
      quench.scope({ deadline = 20 }, function(s)
        assert.are.equal(10, quench.current_deadline())  -- the outer one is earlier
        s:spawn(function() assert.are.equal(10, quench.current_deadline()) end):join()
        outer:set_deadline(30)
        assert.are.equal(20, quench.current_deadline())  -- moved: read live
      end)
      quench.scope({ timeout = 1 }, function(s)
        s:spawn(function() assert.are.equal(1, quench.current_deadline()) end)
      end)
    end)
    assert.are.equal(math.huge, quench.current_deadline())
  end))

  it("current_deadline counts the enclosing quench.timeout and quench.deadline", T(function()
    quench.sleep(3)                                  -- now() == 3: a relative timeout counts from here
    local ok, a, b, c = quench.timeout(10, function()
      local _, earlier = quench.deadline(7, quench.current_deadline)
      local _, later = quench.timeout(50, quench.current_deadline)
      return quench.current_deadline(), earlier, later
    end)
    assert.is_true(ok)
    assert.are.equal(13, a)
    assert.are.equal(7, b)
    assert.are.equal(13, c)                          -- the outer one is earlier
    assert.are.equal(math.huge, quench.current_deadline())
  end))

  it("a scope inside a timeout carries the bound to its children", T(function()
    local seen = {}
    quench.timeout(10, function()
      quench.scope(function(s)                       -- no deadline of its own
        s:spawn(function() seen.child = quench.current_deadline() end)
        quench.scope({ timeout = 20 }, function(inner)
          inner:spawn(function() seen.grandchild = quench.current_deadline() end)
        end)
      end)
    end)
    local h = quench.spawn(function() return quench.current_deadline() end)
    local _, free = h:join()
    assert.are.equal(10, seen.child)
    assert.are.equal(10, seen.grandchild)            -- the inner scope's own 20 is later
    assert.are.equal(math.huge, free)                -- spawned outside: unbounded
  end))

  it("a task spawned inside a timeout, not in a scope, is not bounded by it", T(function()
    local h
    quench.timeout(5, function()
      h = quench.spawn(function() return quench.current_deadline() end)
      h:join()
    end)
    local _, d = h:join()
    assert.are.equal(math.huge, d)
  end))

  it("a task that outlives the scope no longer sees its deadline", T(function()
    local h
    quench.scope({ timeout = 5 }, function()
      h = quench.spawn(function()                 -- not a child: may outlive the scope
        local inside = quench.current_deadline()
        quench.sleep(2)
        return inside, quench.current_deadline()
      end)
    end)
    local _, inside, after = h:join()
    assert.are.equal(5, inside)
    assert.are.equal(math.huge, after)
  end))

  it("a child's failure still wins over the deadline", T(function()
    local ok, err = pcall(quench.scope, { timeout = 5 }, function(s)
      s:spawn(function() quench.sleep(1); error("boom", 0) end)
      quench.sleep(10)
    end)
    assert.is_false(ok)
    assert.are.equal("boom", err)
    assert.are.equal(1, quench.now())
  end))

  it("a cancel of the task running it is passed on and raised", T(function()
    local h = quench.spawn(quench.scope, { timeout = 50 }, function() quench.sleep(100) end)
    quench.sleep(1)
    h:cancel("outer")
    local ok, err = h:join()
    assert.is_false(ok)
    assert.is_true(quench.is_cancelled(err))
    assert.are.equal("outer", err.reason)
  end))

  it("rejects bad deadline options", T(function()
    local body = function() end
    assert.has_error(function() quench.scope({ timeout = 1, deadline = 2 }, body) end,
      "bad argument #1 to 'scope' (give opts.timeout or opts.deadline, not both)")
    assert.has_error(function() quench.scope({ timeout = -1 }, body) end,
      "bad argument #1 to 'scope' (opts.timeout must be a number of seconds >= 0, got -1)")
    assert.has_error(function() quench.scope({ deadline = "soon" }, body) end,
      "bad argument #1 to 'scope' (opts.deadline must be a number (a quench.now() time), got string)")
    quench.scope(function(s)
      assert.has_error(function() s:set_deadline(5) end,
        "quench.scope:set_deadline: the scope has no deadline (make it with opts.deadline "
        .. "or opts.timeout; math.huge for none yet)")
    end)
    quench.scope({ timeout = 1 }, function(s)
      assert.has_error(function() s:set_deadline(0 / 0) end,
        "bad argument #1 to 'set_deadline' (the deadline must be a number, got " .. tostring(0 / 0) .. ")")
    end)
  end))
end)
