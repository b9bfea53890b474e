-- Regressions for the bugs the random cancellation test and the API fuzzer
-- found (docs/testing.md lists them by number).
local quench = require "quench"
local T = quench.test

local function raising_close()
  return setmetatable({}, { __close = function() error("loser cleanup", 0) end })
end

describe("regressions", function()
  it("1: a loser's cleanup error does not swallow the winner's lock or message", T(function()
    local m = quench.mutex()
    local ok, err = pcall(quench.select_biased,
      function() local _ <close> = raising_close(); quench.sleep(1) end, m:lock_op())
    assert.is_false(ok)
    assert.are.equal("loser cleanup", err)
    assert.is_false(m:is_locked())            -- the permit went back
    local ch = quench.channel()
    ch:send("kept")
    ok = pcall(quench.select_biased,
      function() local _ <close> = raising_close(); quench.sleep(1) end, ch:recv_op())
    assert.is_false(ok)
    assert.are.equal("kept", ch:try_recv())   -- the message went back
  end))

  it("2: metamethods called by hand with a wrong argument, or on a live task, do nothing", T(function()
    for _, obj in ipairs({ quench.channel(), quench.token(), quench.spawn(quench.sleep, 1) }) do
      local gc = getmetatable(obj).__gc
      gc("x"); gc(nil); gc(42)
    end
    local h = quench.spawn(function() quench.sleep(1); return "still here" end)
    getmetatable(h).__gc(h)
    assert.are.same({ true, "still here" }, { h:join() })
  end))

  it("3: advance never moves the virtual clock backwards", function()
    quench.run({ clock = "manual" }, function()
      quench.advance(1e10)
      local t = quench.now()
      quench.advance(1e10)
      quench.advance(1e300)
      assert.is_true(quench.now() >= t)
    end)
  end)

  it("4: waiting where the coroutine cannot yield is a clear error, and leaves nothing behind", T(function()
    local n = quench.notify()
    local ok, err = pcall(string.gsub, "a", "a", function() n:notified() end)
    assert.is_false(ok)
    assert.matches("quench.notify:notified: cannot wait here", err)
    n:notify_all()                            -- no stale waiter to wake
    local _, e2 = pcall(table.sort, { 2, 1 }, function() quench.sleep(1) end)
    assert.matches("quench.sleep: cannot wait here", e2)
  end))

  it("4: a quench.guard function may wait when its block ends normally", T(function()
    local waited = false
    do
      local _ <close> = quench.guard(function() quench.sleep(1); waited = true end)
    end
    assert.is_true(waited)
    assert.are.equal(1, quench.now())
  end))

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

  it("8: a channel whose __gc ran refuses to be used, and leaks nothing", function()
    local ch = quench.channel()
    ch:try_send("x")
    getmetatable(ch).__gc(ch)               -- as when a finalizer brings it back
    assert.has_error(function() ch:try_send(1) end,
      "calling 'try_send' on bad self (channel used after it was collected)")
    getmetatable(ch).__gc(ch)               -- twice is harmless
  end)
end)

describe("cleanup errors of branches dropped from above", function()
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
