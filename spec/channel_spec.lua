-- Channels: mpmc channel, oneshot, broadcast, watch (issue: channels and sync).
local quench = require "quench"
local T = quench.test

describe("channel", function()
  it("delivers in FIFO order and drains after close, then says closed", T(function()
    local ch = quench.channel()
    for i = 1, 3 do assert.is_true(ch:send(i)) end
    ch:close()
    assert.are.same({ 1, 2, 3 }, { ch:recv(), ch:recv(), ch:recv() })
    assert.are.same({ nil, "closed" }, { ch:recv() })
    assert.are.same({ nil, "closed" }, { ch:send(4) })
  end))

  it("a bounded send waits for room (backpressure)", T(function()
    local ch = quench.channel(2)
    local sent = 0
    local producer = quench.spawn(function()
      for i = 1, 5 do ch:send(i); sent = i end
    end)
    quench.sleep(1)
    assert.are.equal(2, sent)
    assert.are.equal(2, ch:len())
    assert.are.equal(1, ch:recv())
    quench.yield()
    assert.are.equal(3, sent)
    for i = 2, 5 do assert.are.equal(i, ch:recv()) end
    producer:join()
  end))

  it("serves waiting receivers in FIFO order, and waiting senders too", T(function()
    local ch = quench.channel(1)
    local got = {}
    for i = 1, 3 do
      quench.spawn(function()
        local v = ch:recv()
        got[#got + 1] = i .. ":" .. v
      end)
    end
    quench.yield()
    for v = 1, 3 do ch:send(v) end
    quench.sleep(1)
    assert.are.same({ "1:1", "2:2", "3:3" }, got)
    ch:send("x")                             -- full now
    for i = 1, 3 do quench.spawn(function() ch:send(i) end) end
    quench.yield()
    assert.are.same({ "x", 1, 2, 3 }, { ch:recv(), ch:recv(), ch:recv(), ch:recv() })
  end))

  it("many senders and receivers share one channel", T(function()
    local ch = quench.channel(4)
    local sum, n = 0, 0
    local receivers = {}
    for r = 1, 3 do
      receivers[r] = quench.spawn(function()
        for v in function() return ch:recv() end do sum = sum + v; n = n + 1 end
      end)
    end
    local senders = {}
    for s = 1, 4 do
      senders[s] = quench.spawn(function() for i = 1, 25 do ch:send(i) end end)
    end
    for s = 1, 4 do senders[s]:join() end
    ch:close()
    for r = 1, 3 do receivers[r]:join() end
    assert.are.equal(100, n)
    assert.are.equal(4 * 325, sum)
  end))

  it("try_send and try_recv never wait", T(function()
    local ch = quench.channel(1)
    assert.are.same({ nil, "empty" }, { ch:try_recv() })
    assert.is_true(ch:try_send(false))
    assert.are.same({ nil, "full" }, { ch:try_send(2) })
    assert.are.same({ false }, { ch:try_recv() })
    ch:close()
    assert.are.same({ nil, "closed" }, { ch:try_send(3) })
    assert.are.same({ nil, "closed" }, { ch:try_recv() })
  end))

  it("closes at scope exit as a <close> variable", T(function()
    local ch
    do
      local c <close> = quench.channel()
      ch = c
    end
    assert.is_true(ch:is_closed())
  end))

  it("close wakes waiting receivers and senders", T(function()
    local ch = quench.channel(1)
    ch:send(0)
    local r_send, r_recv
    quench.spawn(function() r_send = { ch:send(1) } end)
    local other = quench.channel()
    quench.spawn(function() r_recv = { other:recv() } end)
    quench.yield()
    ch:close(); other:close()
    quench.yield()
    assert.are.same({ nil, "closed" }, r_send)
    assert.are.same({ nil, "closed" }, r_recv)
  end))

  it("rejects nil, bad capacities and waiting outside a task", function()
    local ch = quench.channel()
    assert.has_error(function() ch:try_send(nil) end,
      "bad argument #1 to 'try_send' (nil cannot be sent (send false or a sentinel))")
    assert.has_error(function() quench.channel(0) end,
      "bad argument #1 to 'channel' (capacity must be at least 1 (or nil: unbounded))")
    assert.has_error(function() quench.channel("big") end,
      "bad argument #1 to 'channel' (number expected, got string)")
    assert.has_error(function() ch:recv() end,
      "quench.channel:recv: not inside quench.run (waiting needs a running task)")
    assert.has_error(function() ch.recv(42) end,
      "bad argument #1 to 'recv' (quench.channel expected, got number)")
  end)

  it("recv_op and send_op work in select and timeout", T(function()
    local ch = quench.channel(1)
    assert.are.same({ true, true }, { quench.timeout(1, ch:send_op("a")) })
    assert.is_false((quench.timeout(1, ch:send_op("b"))))   -- full: not delivered
    assert.are.same({ 1, "a" }, { quench.select(ch:recv_op(), quench.sleep_op(1)) })
    assert.are.same({ nil, "empty" }, { ch:try_recv() })
  end))

  it("timeout over a recv_op that can complete now: the value, or the end, at once",
    T(function()
      local ch = quench.channel()
      ch:send("v")
      ch:close()
      assert.are.same({ true, "v" }, { quench.timeout(1, ch:recv_op()) })
      assert.are.same({ true, nil, "closed" }, { quench.timeout(1, ch:recv_op()) })
      assert.are.equal(0, quench.now())              -- no wait, no timer
      local op = ch:recv_op()
      quench.timeout(1, op)
      assert.has_error(function() quench.timeout(1, op) end,
        "quench.timeout: this recv op was already used (ops are single-use)")
    end))
end)

describe("oneshot", function()
  it("delivers one value, then the receiver sees closed", T(function()
    local tx, rx = quench.oneshot()
    quench.spawn(function() quench.sleep(1); tx:send("result") end)
    assert.are.equal("result", rx:recv())
    assert.are.same({ nil, "closed" }, { rx:recv() })
    assert.has_error(function() tx:send("again") end, "quench.oneshot: a value was already sent")
  end))

  it("tells the receiver when the sender is closed without sending (also by <close>)", T(function()
    local tx, rx = quench.oneshot()
    local h = quench.spawn(function()
      local sender <close> = tx
      quench.sleep(100)
      sender:send("never")
    end)
    quench.sleep(1)
    h:abort()                                -- the sending task is dropped
    assert.are.same({ nil, "closed" }, { rx:recv() })
  end))

  it("tells the sender when the receiver is gone", T(function()
    local tx, rx = quench.oneshot()
    assert.is_false(tx:is_closed())
    rx:close()
    assert.is_true(tx:is_closed())
    assert.are.same({ nil, "closed" }, { tx:send(1) })
  end))
end)

describe("broadcast", function()
  it("every subscriber sees every message sent after it subscribed", T(function()
    local tx = quench.broadcast(8)
    tx:send("before")
    local a, b = tx:subscribe(), tx:subscribe()
    for i = 1, 3 do tx:send(i) end
    for _, rx in ipairs({ a, b }) do
      assert.are.same({ 1, 2, 3 }, { rx:recv(), rx:recv(), rx:recv() })
    end
  end))

  it("a slow subscriber is told it lagged by n, then continues", T(function()
    local tx = quench.broadcast(2)
    local rx = tx:subscribe()
    for i = 1, 5 do tx:send(i) end
    assert.are.same({ nil, "lagged", 3 }, { rx:recv() })
    assert.are.same({ 4, 5 }, { rx:recv(), rx:recv() })
  end))

  it("closing the sender ends every subscriber after what is buffered", T(function()
    local tx = quench.broadcast(4)
    local rx = tx:subscribe()
    local ends = {}
    for i = 1, 2 do
      local sub = tx:subscribe()
      quench.spawn(function() ends[i] = { sub:recv() } end)
    end
    quench.yield()
    tx:send("last")
    tx:close()
    quench.yield()
    assert.are.same({ { "last" }, { "last" } }, ends)
    assert.are.equal("last", rx:recv())
    assert.are.same({ nil, "closed" }, { rx:recv() })
  end))
end)

describe("watch", function()
  it("holds the latest value and wakes subscribers on change", T(function()
    local w = quench.watch("v0")
    local rx = w:subscribe()
    assert.are.equal("v0", rx:get())
    assert.is_false(rx:has_changed())
    quench.spawn(function() quench.sleep(1); w:send("v1"); w:send("v2") end)
    assert.are.equal("v2", rx:changed())     -- the latest, not every one
    assert.are.equal(1, quench.now())
    w:close()
    assert.are.same({ nil, "closed" }, { rx:changed() })
  end))

  it("a dropped changed() loses nothing", T(function()
    local w = quench.watch(0)
    local rx = w:subscribe()
    quench.spawn(function() quench.sleep(2); w:send(1) end)
    assert.is_false((quench.timeout(1, rx:changed_op())))
    assert.are.equal(1, rx:changed())
  end))
end)

describe("article scenarios", function()
  it("two workers stopped by a broadcast shutdown message", T(function()
    local shutdown = quench.broadcast(1)
    local log = {}
    local workers = {}
    for id = 1, 2 do
      local rx = shutdown:subscribe()
      workers[id] = quench.spawn(function()
        local jobs = 0
        while true do
          local i = quench.select(rx:recv_op(), quench.sleep_op(1))
          if i == 1 then break end
          jobs = jobs + 1
        end
        log[#log + 1] = "worker " .. id .. " stopped after " .. jobs .. " jobs"
      end)
    end
    quench.sleep(3.5)
    shutdown:send("shutdown")
    for id = 1, 2 do workers[id]:join() end
    assert.are.same({ "worker 1 stopped after 3 jobs", "worker 2 stopped after 3 jobs" }, log)
    assert.are.equal(3.5, quench.now())
  end))

  it("a biased select starves the other branch on an always-ready channel; a fair one does not", T(function()
    local always = quench.channel()
    for i = 1, 200 do always:send(i) end
    local stop = quench.channel()
    stop:send("stop")                          -- ready from the start, too
    local function drain(sel)
      local n = 0
      while true do
        local i = sel(always:recv_op(), stop:recv_op())
        if i == 2 then return n end
        n = n + 1
        if n == 100 then return n end
      end
    end
    assert.are.equal(100, drain(quench.select_biased))   -- the stop message is never seen
    stop:send("stop")
    assert.is_true(drain(quench.select) < 100)           -- fair: it is seen early
  end))
end)
