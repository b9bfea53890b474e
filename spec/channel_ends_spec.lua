-- Channel ends: counted sender/receiver handles, iteration, recv_many,
-- capacity and room.
local quench = require "quench"
local T = quench.test

describe("channel ends", function()
  it("the channel closes when the last sender goes, without an explicit close", T(function()
    local tx, rx = quench.channel_pair(4)
    local tx2 = tx:clone()
    local got = {}
    local consumer = quench.spawn(function()
      for v in rx:iter() do got[#got + 1] = v end
      return "drained"
    end)
    quench.spawn(function()
      local _tx <close> = tx                     -- a producer that just returns
      tx:send(1); tx:send(2)
    end):join()
    tx2:send(3)
    assert.is_false(rx:is_closed())              -- one sender left
    tx2:close()
    assert.are.same({ true, "drained" }, { consumer:join() })
    assert.are.same({ 1, 2, 3 }, got)
  end))

  it("a producer that fails still closes its end through <close>", T(function()
    local tx, rx = quench.channel_pair()
    local h = quench.spawn(function()
      local _tx <close> = tx
      tx:send("partial")
      error("producer crashed", 0)
    end)
    assert.are.equal("partial", rx:recv())
    assert.are.same({ nil, "closed" }, { rx:recv() })   -- no wait for ever
    assert.are.same({ false, "producer crashed" }, { h:join() })
  end))

  it("a send to a channel nobody can read fails, and what was queued is dropped", T(function()
    local tx, rx = quench.channel_pair(2)
    local rx2 = rx:clone()
    tx:send("a")
    rx:close()
    assert.is_true(tx:send("b"))                 -- rx2 still reads
    rx2:close()
    assert.are.same({ nil, "closed" }, { tx:send("c") })
    assert.are.equal(0, tx:len())
    assert.is_true(tx:is_closed())
  end))

  it("a sender waiting for room is released when the last receiver goes", T(function()
    local tx, rx = quench.channel_pair(1)
    tx:send(1)
    local h = quench.spawn(function() return tx:send(2) end)
    quench.sleep(1)
    rx:close()
    assert.are.same({ true, nil, "closed" }, { h:join() })
  end))

  it("tx:closed() waits until every receiver is gone", T(function()
    local tx, rx = quench.channel_pair()
    local h = quench.spawn(function() tx:closed(); return quench.now() end)
    quench.sleep(2)
    rx:close()
    assert.are.same({ true, 2 }, { h:join() })
    tx:closed()                                  -- at once now
    local i = quench.select(tx:closed_op(), quench.sleep_op(1))
    assert.are.equal(1, i)
  end))

  it("closing a handle twice counts once; a closed handle refuses use", T(function()
    local tx, rx = quench.channel_pair()
    local tx2 = tx:clone()
    tx:close(); tx:close()
    assert.is_false(rx:is_closed())
    assert.has_error(function() tx:send(1) end, "quench.sender:send: this handle was closed")
    tx2:close()
    assert.is_true(rx:is_closed())
    assert.are.equal("quench.sender (closed)", tostring(tx))
  end))

  it("ch:sender() and ch:receiver() count on an existing channel", T(function()
    local ch = quench.channel()
    local tx = ch:sender()
    ch:send("raw")                               -- the channel itself stays usable
    tx:close()
    assert.is_true(ch:is_closed())
    assert.are.equal("raw", ch:recv())
  end))

  it("iter stops when the channel is closed and drained", T(function()
    local ch = quench.channel(3)
    ch:send("x"); ch:send(false); ch:close()
    local got = {}
    for v in ch:iter() do got[#got + 1] = v end
    assert.are.same({ "x", false }, got)
  end))

  it("recv_many waits for one, then takes what is queued up to max", T(function()
    local ch = quench.channel()
    local h = quench.spawn(function() return ch:recv_many(3) end)
    quench.sleep(1)
    for i = 1, 5 do ch:send(i) end
    local _, first = h:join()
    assert.are.same({ 1, 2, 3 }, first)          -- what was queued when it resumed, up to max
    assert.are.same({ 4, 5 }, ch:recv_many(3))
    ch:close()
    assert.are.same({ nil, "closed" }, { ch:recv_many(2) })
    assert.has_error(function() ch:recv_many(0) end,
      "bad argument #1 to 'recv_many' (max must be an integer >= 1, got 0)")
  end))

  it("recv_many is cancel-safe: dropped while waiting, nothing is taken", T(function()
    local ch = quench.channel()
    assert.is_false(quench.timeout(1, function() return ch:recv_many(2) end))
    ch:send("kept")
    assert.are.equal("kept", ch:try_recv())
  end))

  it("capacity and room", T(function()
    local ch = quench.channel(3)
    assert.are.equal(3, ch:capacity())
    assert.are.equal(3, ch:room())
    ch:send(1)
    assert.are.equal(2, ch:room())
    assert.are.equal(1, ch:len())
    local unbounded = quench.channel()
    assert.is_nil(unbounded:capacity())
    assert.is_nil(unbounded:room())
    ch:close()
    assert.are.equal(0, ch:room())
    local tx = quench.channel(5):sender()
    assert.are.equal(5, tx:capacity())
  end))
end)
