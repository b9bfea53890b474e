-- Cancellation tokens (docs/design.md S9).
local quench = require "quench"
local T = quench.test

describe("tokens (S9)", function()
  it("cancel is idempotent and keeps the first reason", function()
    local t = quench.token()
    assert.is_false(t:is_cancelled())
    assert.is_true(t:cancel("first"))
    assert.is_false(t:cancel("second"))
    assert.is_true(t:is_cancelled())
    assert.are.equal("first", t:reason())
  end)

  it("a child is cancelled with its parent, never the reverse", function()
    local root = quench.token()
    local a, b = root:child(), root:child()
    local a1 = a:child()
    a1:cancel("leaf")
    assert.is_false(a:is_cancelled())
    assert.is_false(root:is_cancelled())
    root:cancel("root")
    for _, t in ipairs({ a, b, a1 }) do assert.is_true(t:is_cancelled()) end
    assert.are.equal("root", a:reason())
    assert.are.equal("leaf", a1:reason())     -- it was cancelled first, by itself
    assert.is_true(root:child():is_cancelled())   -- born cancelled
  end)

  it("cancels trees of any depth", function()
    local root = quench.token()
    local t = root
    for _ = 1, 100000 do t = t:child() end
    root:cancel("deep")
    assert.is_true(t:is_cancelled())
    assert.are.equal("deep", t:reason())
  end)

  it("a dropped child is released from its parent", function()
    local root = quench.token()
    for _ = 1, 1000 do root:child() end
    collectgarbage("collect"); collectgarbage("collect")
    local before = collectgarbage("count")
    for _ = 1, 10000 do root:child() end
    collectgarbage("collect"); collectgarbage("collect")
    assert.is_true(collectgarbage("count") < before + 32)
    root:cancel()   -- must not touch the collected children
    assert.is_true(root:is_cancelled())
  end)

  it("a child keeps its parent alive", function()
    local child = quench.token():child()
    collectgarbage("collect")
    assert.is_false(child:is_cancelled())
  end)

  it("guard() cancels at scope exit", function()
    local t = quench.token()
    do
      local _g <close> = t:guard()
      assert.is_false(t:is_cancelled())
    end
    assert.is_true(t:is_cancelled())
  end)

  it("cancelled() waits and returns the reason", T(function()
    local t = quench.token()
    quench.spawn(function() quench.sleep(3); t:cancel("done waiting") end)
    assert.are.equal("done waiting", t:cancelled())
    assert.are.equal(3, quench.now())
    assert.are.equal("done waiting", t:cancelled())   -- already cancelled: at once
    assert.are.equal(3, quench.now())
  end))

  it("cancelled_op works in select and timeout", T(function()
    local t = quench.token()
    assert.is_false((quench.timeout(1, t:cancelled_op())))
    quench.spawn(function() quench.sleep(1); t:cancel("go") end)
    assert.are.same({ 2, "go" }, { quench.select(quench.sleep_op(10), t:cancelled_op()) })
  end))

  it("a parent's cancel wakes tasks waiting on every descendant", T(function()
    local root = quench.token()
    local woke = 0
    for _ = 1, 5 do
      local t = root:child():child()
      quench.spawn(function() t:cancelled(); woke = woke + 1 end)
    end
    quench.sleep(1)
    assert.are.equal(0, woke)
    root:cancel()
    quench.sleep(1)
    assert.are.equal(5, woke)
  end))

  it("run returns the function's results, or false and Cancelled (the function dropped)", T(function()
    local t = quench.token()
    assert.are.same({ true, 1, 2 }, { t:run(function(a) quench.sleep(1); return a, 2 end, 1) })
    local log = {}
    quench.spawn(function() quench.sleep(2); t:cancel("stop") end)
    local ok, err = t:run(function()
      local _ <close> = setmetatable({}, { __close = function() log[#log + 1] = "dropped" end })
      quench.sleep(10)
    end)
    assert.is_false(ok)
    assert.is_true(quench.is_cancelled(err))
    assert.are.equal("stop", err.reason)
    assert.are.same({ "dropped" }, log)
  end))

  it("run does not start the function when already cancelled", T(function()
    local t = quench.token()
    t:cancel()
    local ran = false
    assert.is_false((t:run(function() ran = true end)))
    assert.is_false(ran)
  end))

  it("spawn binds a task: cancelling the token cancels it gracefully", T(function()
    local root = quench.token()
    local log = {}
    local workers = {}
    for i = 1, 3 do
      workers[i] = root:child():spawn(function()
        local ok = pcall(quench.sleep, 100)
        quench.shield(quench.sleep, 1)     -- async cleanup after the cancel
        log[#log + 1] = i .. (ok and " slept" or " cancelled")
      end)
    end
    quench.sleep(1)
    root:cancel("shutdown")
    for i = 1, 3 do workers[i]:join() end
    table.sort(log)
    assert.are.same({ "1 cancelled", "2 cancelled", "3 cancelled" }, log)
    assert.are.equal(2, quench.now())
  end))

  it("a task bound to a cancelled token starts cancelled, with the token's reason", T(function()
    local t = quench.token()
    t:cancel("already")
    local h = t:spawn(quench.sleep, 5)
    local ok, err = h:join()
    assert.is_false(ok)
    assert.are.equal("already", err.reason)
  end))

  it("rejects what is not a token", function()
    local t = quench.token()
    assert.has_error(function() t.cancel({}) end,
      "bad argument #1 to 'cancel' (quench.token expected, got table)")
  end)
end)
