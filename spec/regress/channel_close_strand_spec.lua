-- A bounded channel told a receiver "closed" while a sender it had given
-- room to before the close had not delivered yet; the value then went into
-- the closed channel, send said true, and nobody ever read it.
local quench = require "quench"
local T = quench.test

describe("a close while a granted sender has not delivered", function()
  it("the issue's program: try_recv grants the waiting producer, then close", T(function()
    local ch = quench.channel(1)
    ch:send("a")
    local sent
    local producer = quench.spawn(function() sent = { ch:send("b") } end)
    quench.yield()                              -- the producer now waits in send("b")
    local got = {}
    local consumer = quench.spawn(function()
      repeat
        local v, err = ch:recv()
        got[#got + 1] = v or err
      until v == nil
    end)
    assert.are.equal("a", ch:try_recv())        -- grants the producer the free slot
    ch:close()
    consumer:join()
    producer:join()
    assert.are.same({ true }, sent)
    assert.are.same({ "b", "closed" }, got)     -- today: { "closed" }, and "b" is stranded
    assert.are.same({ nil, "closed" }, { ch:try_recv() })
  end))

  it("a granted sender dropped before delivering lets the receivers see 'closed'", T(function()
    local ch = quench.channel(1)
    ch:send("a")
    local producer = quench.spawn(function() ch:send("b") end)
    quench.yield()
    local consumer = quench.spawn(function()
      local out = {}
      repeat
        local v, err = ch:recv()
        out[#out + 1] = v or err
      until v == nil
      return out
    end)
    assert.are.equal("a", ch:try_recv())        -- grants the producer
    ch:close()
    producer:abort()                            -- it never delivers: its permit is given up
    assert.are.same({ true, { "closed" } }, { consumer:join() })
  end))

  it("a sender still waiting for room when the channel closes keeps its value", T(function()
    local ch = quench.channel(1)
    ch:send("a")
    local producer = quench.spawn(function() return ch:send("b") end)
    quench.yield()
    ch:close()
    assert.are.same({ true, nil, "closed" }, { producer:join() })
    assert.are.equal("a", ch:recv())
    assert.are.same({ nil, "closed" }, { ch:recv() })
  end))

  it("try_recv says 'empty', not 'closed', while a granted sender has not delivered", T(function()
    local ch = quench.channel(1)
    ch:send("a")
    local producer = quench.spawn(function() return ch:send("b") end)
    quench.yield()
    assert.are.equal("a", ch:try_recv())
    ch:close()
    assert.are.same({ nil, "empty" }, { ch:try_recv() })
    producer:join()
    assert.are.equal("b", ch:try_recv())
    assert.are.same({ nil, "closed" }, { ch:try_recv() })
  end))
end)
