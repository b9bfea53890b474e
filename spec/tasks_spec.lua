-- Tasks: spawn, join, abort as drop, handles (docs/design.md S1-S4, S12, S16).
local quench = require "quench"
local T = quench.test

-- A value whose <close> appends `name` to `log`.
local function closer(log, name)
  return setmetatable({}, { __close = function() log[#log + 1] = name end })
end

describe("spawn (S1)", function()
  it("does not run the task before the spawner awaits", T(function()
    local ran = false
    local h = quench.spawn(function() ran = true end)
    assert.is_false(ran)
    assert.are.equal("pending", h:state())
    quench.yield()
    assert.is_true(ran)
    assert.is_true(h:done())
  end))

  it("runs spawned tasks in spawn order", T(function()
    local order = {}
    for i = 1, 5 do quench.spawn(function() order[#order + 1] = i end) end
    quench.sleep(0)
    assert.are.same({ 1, 2, 3, 4, 5 }, order)
  end))

  it("passes arguments, nils included", T(function()
    local h = quench.spawn(function(...) return select("#", ...), ... end, 1, nil, 3)
    assert.are.same(table.pack(true, 3, 1, nil, 3), table.pack(h:join()))
  end))
end)

describe("join (S2)", function()
  it("returns true and every result", T(function()
    local h = quench.spawn(function() quench.sleep(1); return "a", nil, "c" end)
    local r = table.pack(h:join())
    assert.are.equal(4, r.n)
    assert.are.equal("a", r[2]); assert.is_nil(r[3]); assert.are.equal("c", r[4])
  end))

  it("returns false and the task's error", T(function()
    local e = { "mine" }
    local h = quench.spawn(function() quench.sleep(1); error(e) end)
    local ok, err = h:join()
    assert.is_false(ok)
    assert.are.equal(e, err)
  end))

  it("lets any number of tasks join and keeps the result", T(function()
    local h = quench.spawn(function() quench.sleep(2); return 42 end)
    local seen = {}
    local joiners = {}
    for i = 1, 3 do
      joiners[i] = quench.spawn(function() seen[i] = select(2, h:join()) end)
    end
    for i = 1, 3 do joiners[i]:join() end
    assert.are.same({ 42, 42, 42 }, seen)
    assert.are.same({ true, 42 }, { h:join() })
    assert.are.same({ true, 42 }, { h:join() })
  end))

  it("of an already finished task does not wait", T(function()
    local h = quench.spawn(function() return 7 end)
    quench.yield()
    local t0 = quench.now()
    assert.are.same({ true, 7 }, { h:join() })
    assert.are.equal(t0, quench.now())
  end))

  it("refuses to join itself", T(function()
    local me = quench.current()
    assert.has_error(function() me:join() end, "quench.task:join: a task cannot join itself")
  end))
end)

describe("abort (S3: abort is drop)", function()
  it("closes a suspended task before returning: <close> in reverse, then defers LIFO", T(function()
    local log = {}
    local h = quench.spawn(function()
      quench.defer(function() log[#log + 1] = "defer1" end)
      quench.defer(function() log[#log + 1] = "defer2" end)
      local _a <close> = closer(log, "a")
      local function inner()
        local _b <close> = closer(log, "b")
        local _c <close> = closer(log, "c")
        quench.sleep(3600)
        log[#log + 1] = "woke"
      end
      inner()
    end)
    quench.sleep(1)
    assert.are.same({}, log)
    h:abort("stop")
    assert.are.same({ "c", "b", "a", "defer2", "defer1" }, log)
    assert.is_true(h:done())
    local ok, err = h:join()
    assert.is_false(ok)
    assert.is_true(quench.is_cancelled(err))
    assert.are.equal("stop", err.reason)
  end))

  it("drops the pending op: the sleep timer no longer wakes anything", T(function()
    local h = quench.spawn(function() quench.sleep(5) end)
    quench.sleep(1)
    h:abort()
    local t0 = quench.now()
    quench.sleep(10)          -- the virtual clock jumps straight to our own timer
    assert.are.equal(t0 + 10, quench.now())
    assert.is_true(h:done())
  end))

  it("of a never-started task: it never runs", T(function()
    local ran = false
    local h = quench.spawn(function() ran = true end)
    h:abort()
    quench.sleep(1)
    assert.is_false(ran)
    assert.is_true(quench.is_cancelled(select(2, h:join())))
  end))

  it("of a finished task has no effect: completion wins", T(function()
    local h = quench.spawn(function() return "done" end)
    quench.yield()
    h:abort("late")
    h:cancel("later")
    assert.are.same({ true, "done" }, { h:join() })
  end))

  it("twice is the same as once, and the first reason wins", T(function()
    local closes = 0
    local h = quench.spawn(function()
      local _ <close> = setmetatable({}, { __close = function() closes = closes + 1 end })
      quench.sleep(100)
    end)
    quench.yield()
    h:cancel("first")
    h:abort("second")
    h:abort("third")
    assert.are.equal(1, closes)
    assert.are.equal("first", select(2, h:join()).reason)
  end))

  it("of itself takes effect at its next await, which never returns", T(function()
    local log = {}
    local h = quench.spawn(function()
      local _ <close> = closer(log, "closed")
      quench.current():abort("self")
      log[#log + 1] = "still running"
      quench.sleep(1)
      log[#log + 1] = "after await"
    end)
    local ok, err = h:join()
    assert.is_false(ok)
    assert.are.equal("self", err.reason)
    assert.are.same({ "still running", "closed" }, log)
  end))

  it("from inside another task's cleanup works", T(function()
    local log = {}
    local victim = quench.spawn(function()
      local _ <close> = closer(log, "victim")
      quench.sleep(100)
    end)
    local h = quench.spawn(function()
      local _ <close> = setmetatable({}, { __close = function() victim:abort() end })
      quench.sleep(100)
    end)
    quench.yield()
    h:abort()
    assert.are.same({ "victim" }, log)
    assert.is_true(victim:done())
  end))

  it("cannot wait in drop-time cleanup: the await raises a clear error", T(function()
    local msg
    local h = quench.spawn(function()
      local _ <close> = setmetatable({}, { __close = function()
        local ok, err = pcall(quench.sleep, 1)
        msg = not ok and err
      end })
      quench.sleep(100)
    end)
    quench.yield()
    h:abort()
    assert.matches("quench.sleep: cannot wait in drop%-time cleanup", msg)
  end))

  it("keeps running the other cleanups after one raises; the task fails with that error", T(function()
    local log = {}
    local h = quench.spawn(function()
      local _ <close> = closer(log, "outer")
      local _ <close> = setmetatable({}, { __close = function() error("cleanup broke", 0) end })
      local _ <close> = closer(log, "inner")
      quench.sleep(100)
    end)
    quench.yield()
    h:abort()
    assert.are.same({ "inner", "outer" }, log)
    local ok, err = h:join()
    assert.is_false(ok)
    assert.are.equal("cleanup broke", err)
  end))
end)

describe("h:defer", function()
  it("runs at the task's end on every outcome, after the task's own defers", T(function()
    local log = {}
    local h = quench.spawn(function()
      quench.defer(function() log[#log + 1] = "inside" end)
      quench.sleep(1)
    end)
    h:defer(function() log[#log + 1] = "outside" end)
    h:join()
    assert.are.same({ "inside", "outside" }, log)
  end))

  it("runs for a task aborted before it ever ran", T(function()
    local ran = false
    local h = quench.spawn(function() end)
    h:defer(function() ran = true end)
    h:abort()
    assert.is_true(ran)
  end))

  it("is refused once the task has ended", T(function()
    local h = quench.spawn(function() end)
    h:join()
    assert.has_error(function() h:defer(print) end, "quench.task:defer: the task has ended")
  end))
end)

describe("handles (S4)", function()
  it("in a <close> variable abort their task at scope exit", T(function()
    local log = {}
    local h
    do
      local inner <close> = quench.spawn(function()
        local _ <close> = closer(log, "cleaned")
        quench.sleep(100)
      end)
      h = inner
      quench.yield()
    end
    assert.are.same({ "cleaned" }, log)
    assert.is_true(quench.is_cancelled(select(2, h:join())))
  end))

  it("collected by the GC leave their task running (detached)", T(function()
    local finished = false
    quench.spawn(function() quench.sleep(1); finished = true end)
    for _ = 1, 3 do collectgarbage("collect") end
    quench.sleep(2)
    assert.is_true(finished)
  end))

  it("detached in a <close> variable do not abort", T(function()
    local finished = false
    do
      local h <close> = quench.spawn(function() quench.sleep(1); finished = true end)
      h:detach()
    end
    quench.sleep(2)
    assert.is_true(finished)
  end))

  it("print their id and state", T(function()
    local h = quench.spawn(function() end)
    assert.matches("^quench.task #%d+ %(pending%)$", tostring(h))
    assert.is_number(h:id())
    h:join()
  end))
end)

describe("plain coroutines (S16)", function()
  it("cannot wait inside a task: clear error", T(function()
    local co = coroutine.wrap(function() quench.sleep(1) end)
    assert.has_error(co, "quench.sleep: called from a coroutine that is not a quench task or "
      .. "select branch (a plain coroutine inside a task cannot wait)")
  end))

  it("may still be used for generators inside a task", T(function()
    local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
    quench.sleep(1)
    assert.are.same({ 1, 2, 3 }, { gen(), gen(), gen() })
  end))

  it("a bare coroutine.yield in a task fails the task with a clear error", T(function()
    local h = quench.spawn(function() coroutine.yield() end)
    local ok, err = h:join()
    assert.is_false(ok)
    assert.matches("coroutine.yield%(%) called directly in a task", err)
  end))

  it("a recycled thread carries no hook from its previous task", T(function()
    local a = quench.spawn(function() debug.sethook(function() end, "l") end)
    a:join()
    local b = quench.spawn(function() return debug.gethook() end)
    local _, hook = b:join()
    assert.is_nil(hook)
  end))
end)

describe("bad input", function()
  it("spawn, join, abort and friends name the function and the argument", T(function()
    assert.has_error(function() quench.spawn() end,
      "bad argument #1 to 'spawn' (function expected, got no value)")
    assert.has_error(function() quench.spawn(42) end,
      "bad argument #1 to 'spawn' (function expected, got number)")
    local h = quench.spawn(function() end)
    assert.has_error(function() h.join({}) end,
      "bad argument #1 to 'join' (quench.task expected, got table)")
    assert.has_error(function() h.abort("x") end,
      "bad argument #1 to 'abort' (quench.task expected, got string)")
    assert.has_error(function() h.cancel(nil) end,
      "bad argument #1 to 'cancel' (quench.task expected, got nil)")
    assert.has_error(function() h.done(quench.channel()) end,
      "bad argument #1 to 'done' (quench.task expected, got quench.channel)")
    assert.has_error(function() quench.sleep() end,
      "bad argument #1 to 'sleep' (number expected, got no value)")
    assert.has_error(function() quench.sleep("soon") end,
      "bad argument #1 to 'sleep' (number expected, got string)")
    assert.has_error(function() quench.sleep(0 / 0) end,
      "bad argument #1 to 'sleep' (number expected, got NaN)")
    assert.has_error(function() quench.defer() end,
      "bad argument #1 to 'defer' (function expected, got no value)")
    assert.has_error(function() quench.guard(1) end,
      "bad argument #1 to 'guard' (function expected, got number)")
    assert.has_error(function() h:stop("long") end,
      "bad argument #1 to 'stop' (number expected, got string)")
    assert.has_error(function() h:name(5) end,
      "bad argument #1 to 'name' (string expected, got number)")
    h:join()
  end))

  it("a huge or negative sleep is accepted (negative: a yield; huge: effectively forever)", T(function()
    quench.sleep(-5)
    local ok = quench.timeout(1, quench.sleep, 1e300)
    assert.is_false(ok)
  end))

  it("joining a handle from another runtime is a clear error", function()
    local foreign
    quench.run({ clock = "virtual" }, function() foreign = quench.spawn(function() return 1 end) end)
    quench.run({ clock = "virtual" }, function()
      assert.has_error(function() foreign:join() end,
        "calling 'join' on bad self (the task belongs to another runtime)")
      assert.has_error(function() quench.select(foreign:join_op()) end,
        "quench.task:join_op: the task belongs to another runtime")
      foreign:abort()                          -- no effect, no error: its runtime is gone
      assert.is_true(foreign:done())
    end)
  end)
end)
