-- Mutex, rwlock, semaphore, notify, barrier.
local quench = require "quench"
local T = quench.test

describe("mutex", function()
  it("excludes: one holder at a time, FIFO hand-over", T(function()
    local m = quench.mutex()
    local order, inside = {}, 0
    local hs = {}
    for i = 1, 4 do
      hs[i] = quench.spawn(function()
        local _g <close> = m:lock()
        inside = inside + 1
        assert.are.equal(1, inside)
        quench.sleep(1)
        order[#order + 1] = i
        inside = inside - 1
      end)
    end
    for i = 1, 4 do hs[i]:join() end
    assert.are.same({ 1, 2, 3, 4 }, order)
    assert.is_false(m:is_locked())
  end))

  it("a guard held by an aborted task is released by its drop (article: mutex guard)", T(function()
    local m = quench.mutex()
    local h = quench.spawn(function()
      local _g <close> = m:lock()
      quench.sleep(100)
    end)
    quench.sleep(1)
    assert.is_true(m:is_locked())
    h:abort()
    assert.is_false(m:is_locked())
    local g <close> = m:lock()
    assert.is_true(g:held())
  end))

  it("try_lock does not wait; release is idempotent", T(function()
    local m = quench.mutex()
    local g = m:try_lock()
    assert.is_not_nil(g)
    assert.is_nil(m:try_lock())
    g:release(); g:release()
    assert.is_false(m:is_locked())
  end))
end)

describe("rwlock", function()
  it("lets readers share and a writer exclude, in FIFO order", T(function()
    local rw = quench.rwlock()
    local log = {}
    local r1 = rw:read()
    local r2 = rw:read()
    quench.spawn(function() local _w <close> = rw:write(); log[#log + 1] = "writer" end)
    quench.spawn(function() local _r <close> = rw:read(); log[#log + 1] = "late reader" end)
    quench.yield()
    assert.are.same({}, log)                 -- the writer waits; the late reader queues behind it
    r1:release(); r2:release()
    quench.sleep(1)
    assert.are.same({ "writer", "late reader" }, log)
  end))
end)

describe("semaphore", function()
  it("limits concurrency to its permits", T(function()
    local s = quench.semaphore(2)
    local inside, peak = 0, 0
    local hs = {}
    for i = 1, 6 do
      hs[i] = quench.spawn(function()
        local _p <close> = s:acquire()
        inside = inside + 1
        peak = math.max(peak, inside)
        quench.sleep(1)
        inside = inside - 1
      end)
    end
    for i = 1, 6 do hs[i]:join() end
    assert.are.equal(2, peak)
    assert.are.equal(3, quench.now())
    assert.are.equal(2, s:available())
  end))

  it("takes k permits at once and refuses impossible requests", T(function()
    local s = quench.semaphore(3)
    local p = s:acquire(3)
    assert.are.equal(0, s:available())
    p:release()
    assert.has_error(function() s:acquire(2 ^ 30 + 1) end,
      "bad argument #1 to 'acquire' (more than 2^30 permits)")
    assert.has_error(function() s:acquire(0) end,
      "bad argument #1 to 'acquire' (must take at least 1 permit)")
  end))
end)

describe("notify", function()
  it("notify_one wakes one waiter, or is stored for the next", T(function()
    local n = quench.notify()
    n:notify_one()
    n:notified()                             -- the stored permit
    local woke = 0
    for _ = 1, 2 do quench.spawn(function() n:notified(); woke = woke + 1 end) end
    quench.yield()
    n:notify_one()
    quench.yield()
    assert.are.equal(1, woke)
    n:notify_all()
    quench.yield()
    assert.are.equal(2, woke)
  end))

  it("a notify_one given to a dropped waiter goes to the next", T(function()
    local n = quench.notify()
    local first = quench.spawn(function() n:notified() end)
    local second_woke = false
    quench.spawn(function() n:notified(); second_woke = true end)
    quench.yield()
    n:notify_one()                           -- handed to `first`...
    first:abort()                            -- ...which is dropped before it ran
    quench.yield()
    assert.is_true(second_woke)
  end))
end)

describe("barrier", function()
  it("releases everyone when the last arrives; that one is the leader", T(function()
    local b = quench.barrier(3)
    local results = {}
    for i = 1, 2 do quench.spawn(function() local leader = b:wait(); results[i] = leader end) end
    quench.sleep(1)
    assert.are.same({}, results)
    assert.is_true(b:wait())
    quench.yield()
    assert.are.same({ false, false }, results)
  end))

  it("wait_op works in select", T(function()
    local b = quench.barrier(2)
    quench.spawn(function() b:wait() end)
    -- the other task arrives last: it is the leader
    assert.are.same({ 1, false }, { quench.select(b:wait_op(), quench.sleep_op(1)) })
  end))

  it("a waiter dropped before the release takes its arrival back", T(function()
    local b = quench.barrier(2)
    local h = quench.spawn(function() b:wait() end)
    quench.yield()
    h:abort()
    local done = false
    quench.spawn(function() b:wait(); done = true end)
    quench.yield()
    assert.is_false(done)                    -- still needs a second arrival
    b:wait()
    quench.yield()
    assert.is_true(done)
  end))
end)
