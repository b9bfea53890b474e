-- Semaphore add_permits/close/forget, permit split/merge, rwlock downgrade
-- and max readers, notify_last, broadcast counts, watch mark_changed /
-- wait_for / send_modify, try_select.
local quench = require "quench"
local T = quench.test

describe("semaphore", function()
  it("add_permits wakes waiters in order", T(function()
    local sem = quench.semaphore(1)
    local held = sem:acquire()
    local order = {}
    local hs = {}
    for i = 1, 2 do
      hs[i] = quench.spawn(function()
        local _p <close> = sem:acquire()
        order[#order + 1] = i
        quench.sleep(1)
      end)
    end
    quench.sleep(1)
    assert.are.same({}, order)
    sem:add_permits(1)
    quench.sleep(0.5)
    assert.are.same({ 1 }, order)
    held:release()
    hs[1]:join(); hs[2]:join()
    assert.are.same({ 1, 2 }, order)
    assert.are.equal(2, sem:available())
    sem:acquire(2):release()                     -- the total grew: 2 at once is allowed
  end))

  it("close: waiters and later acquires get nil, 'closed'; held permits stay valid", T(function()
    local sem = quench.semaphore(1)
    local held = sem:acquire()
    local h = quench.spawn(function() return sem:acquire() end)
    quench.sleep(1)
    sem:close()
    assert.are.same({ true, nil, "closed" }, { h:join() })
    assert.are.same({ nil, "closed" }, { sem:acquire() })
    assert.are.same({ nil, "closed" }, { sem:try_acquire() })
    assert.is_true(sem:is_closed())
    assert.is_true(held:held())
    held:release()
    assert.are.equal(1, sem:available())
  end))

  it("a cancelled acquire never holds a permit, also at a close", T(function()
    local sem = quench.semaphore(1)
    local p = sem:acquire()
    local ok = quench.timeout(1, sem:acquire_op())
    assert.is_false(ok)
    p:release()
    assert.are.equal(1, sem:available())         -- nothing kept by the dropped waiter
    local h = quench.spawn(function() return sem:acquire(1) end)
    h:abort()
    assert.are.equal(1, sem:available())
  end))

  it("forget_permits takes available permits away for good", T(function()
    local sem = quench.semaphore(5)
    local p = sem:acquire(2)
    assert.are.equal(3, sem:forget_permits(4))   -- only 3 were available
    assert.are.equal(0, sem:available())
    p:release()
    assert.are.equal(2, sem:available())
    assert.is_nil(sem:try_acquire(3))            -- the semaphore has 2 now
  end))

  it("a request above the total waits for add_permits (semaphore(0) included)", T(function()
    local sem = quench.semaphore(0)
    local h = quench.spawn(function() return sem:acquire(3):count() end)
    quench.sleep(1)
    sem:add_permits(2)
    quench.sleep(1)
    assert.is_nil(sem:try_acquire(1))            -- queued behind the waiting request
    sem:add_permits(1)
    assert.are.same({ true, 3 }, { h:join() })
  end))

  it("a permit can be forgotten, split and merged", T(function()
    local sem = quench.semaphore(4)
    local p = sem:acquire(3)
    local q = p:split(1)
    assert.are.equal(2, p:count())
    assert.are.equal(1, q:count())
    q:release()
    assert.are.equal(2, sem:available())
    local r = sem:acquire(2)
    p:merge(r)
    assert.are.equal(4, p:count())
    assert.is_false(r:held())
    r:release()                                  -- spent: releases nothing
    assert.are.equal(0, sem:available())
    local single = p:split(1)
    single:forget()
    p:release()
    assert.are.equal(3, sem:available())         -- one permit is gone for good
    assert.has_error(function() p:split(1) end, "quench.permit:split: the permit was released")
  end))

  it("split and merge refuse bad arguments", T(function()
    local a, b = quench.semaphore(2), quench.semaphore(2)
    local p, q = a:acquire(2), b:acquire(1)
    assert.has_error(function() p:split(2) end)
    assert.has_error(function() p:merge(q) end)
    assert.has_error(function() p:merge(p) end)
    p:release(); q:release()
  end))
end)

describe("rwlock", function()
  it("downgrade turns a write permit into a read permit with no gap", T(function()
    local rw = quench.rwlock()
    local w = rw:write()
    local got_read, got_write = false, false
    quench.spawn(function() local _r <close> = rw:read(); got_read = true; quench.sleep(5) end)
    local writer = quench.spawn(function() local _x <close> = rw:write(); got_write = true end)
    quench.sleep(1)
    assert.is_false(got_read)
    w:downgrade()
    quench.sleep(1)
    assert.is_true(got_read)                     -- readers get in
    assert.is_false(got_write)                   -- a writer still waits for our read permit
    w:release()
    writer:join()
    assert.is_true(got_write)
  end))

  it("a maximum of readers", T(function()
    local rw = quench.rwlock(2)
    local a, b = rw:read(), rw:read()
    assert.is_nil(rw:try_read())
    a:release()
    local c = assert(rw:try_read())
    assert.has_error(function() c:downgrade() end,
      "quench.permit:downgrade: not a write permit of an rwlock")
    c:release(); b:release()
    local w = assert(rw:try_write())
    w:release()
    assert.has_error(function() quench.rwlock(0) end)
  end))
end)

describe("notify_last", function()
  it("wakes the newest waiter, or stores a permit", T(function()
    local n = quench.notify()
    local woke = {}
    for i = 1, 3 do
      quench.spawn(function() n:notified(); woke[#woke + 1] = i end)
    end
    quench.sleep(1)
    n:notify_last()
    quench.sleep(1)
    assert.are.same({ 3 }, woke)
    n:notify_one()
    quench.sleep(1)
    assert.are.same({ 3, 1 }, woke)
    n:notify_last(); quench.sleep(1)
    assert.are.same({ 3, 1, 2 }, woke)
    n:notify_last()                              -- nobody waits: stored
    n:notified()
  end))
end)

describe("broadcast counts", function()
  it("send returns how many receivers will get it; receiver_count follows close", T(function()
    local tx = quench.broadcast(4)
    assert.are.equal(0, tx:send("nobody"))
    local a, b = tx:subscribe(), tx:subscribe()
    assert.are.equal(2, tx:receiver_count())
    assert.are.equal(2, tx:send("both"))
    b:close(); b:close()
    assert.are.equal(1, tx:receiver_count())
    assert.are.equal(1, tx:send("one"))
    do local _c <close> = tx:subscribe() end
    assert.are.equal(1, tx:receiver_count())
    assert.are.equal(2, a:len())
    a:recv()
    assert.are.equal(1, a:len())
    for i = 1, 6 do tx:send(i) end
    assert.are.equal(4, a:len())                 -- at most the capacity
  end))
end)

describe("watch", function()
  it("mark_changed makes the current value unseen", T(function()
    local tx = quench.watch(1)
    local rx = tx:subscribe()
    assert.is_false(rx:has_changed())
    rx:mark_changed()
    assert.is_true(rx:has_changed())
    assert.are.equal(1, rx:changed())            -- at once
    rx:mark_unchanged()
    assert.is_false(rx:has_changed())
  end))

  it("wait_for returns the first value that satisfies the predicate", T(function()
    local tx = quench.watch(0)
    local rx = tx:subscribe()
    quench.spawn(function() for i = 1, 5 do quench.sleep(1); tx:send(i) end end)
    assert.are.equal(3, rx:wait_for(function(v) return v >= 3 end))
    assert.are.equal(3, quench.now())
    assert.are.equal(3, rx:wait_for(function(v) return v >= 3 end))   -- the current one
    local i, v = quench.select(rx:wait_for_op(function(x) return x == 5 end), quench.sleep_op(10))
    assert.are.same({ 1, 5 }, { i, v })
    tx:close()
    assert.are.same({ nil, "closed" }, { rx:wait_for(function() return false end) })
  end))

  it("send_modify changes the value in place and notifies", T(function()
    local tx = quench.watch({ n = 0 })
    local rx = tx:subscribe()
    tx:send_modify(function(v) v.n = v.n + 1 end)
    assert.is_true(rx:has_changed())
    assert.are.equal(1, rx:get().n)
    tx:send_modify(function() return "replaced" end)
    assert.are.equal("replaced", rx:changed())
    assert.has_error(function() tx:send_modify(function() error("no", 0) end) end, "no")
    assert.is_false(rx:has_changed())            -- a failing fn changes nothing
    tx:close()
    assert.are.same({ nil, "closed" }, { tx:send_modify(function() end) })
  end))
end)

describe("quench.try_select", function()
  it("takes a ready branch, or returns nil without waiting", T(function()
    local ch = quench.channel(2)
    assert.is_nil(quench.try_select(ch:recv_op()))
    ch:send("x")
    assert.are.same({ 1, "x" }, { quench.try_select(ch:recv_op(), quench.sleep_op(1)) })
    assert.is_nil(quench.try_select(function() quench.sleep(1) end))
    assert.are.equal(0, quench.now())            -- never waited
    assert.are.same({ 1, "now" }, { quench.try_select(function() return "now" end) })
    ch:send("y")
    assert.is_nil(quench.try_select(quench.sleep_op(1)))
    assert.are.equal("y", ch:try_recv())         -- a losing recv took nothing
    assert.has_error(function() quench.try_select() end, "quench.try_select: needs at least one branch")
  end))
end)

describe("semaphore limits", function()
  it("add_permits refuses a total above 2^30, however large n is", T(function()
    local sem = quench.semaphore(1)
    assert.has_error(function() sem:add_permits(math.maxinteger) end,
      "bad argument #1 to 'add_permits' (the semaphore would have more than 2^30 permits)")
    assert.has_error(function() sem:add_permits(-1) end,
      "bad argument #1 to 'add_permits' (permits to add must be >= 0)")
    sem:add_permits(2 ^ 30 - 1)
    assert.are.equal(2 ^ 30, sem:available())
  end))
end)
