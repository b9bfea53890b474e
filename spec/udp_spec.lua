-- UDP sockets (docs/io.md "UDP"): loopback only, real clock, every wait
-- bounded by quench.timeout.
local quench = require "quench"

local function T(fn)
  return quench.test(fn, { clock = "real" })
end

local LIMIT = 5   -- seconds: no wait in these specs may take longer

-- Wait for fn(...) at most LIMIT seconds; its results, or an error.
local function bounded(fn, ...)
  local r = table.pack(quench.timeout(LIMIT, fn, ...))
  assert(r[1], "timed out")
  return table.unpack(r, 2, r.n)
end

local function pair(opts)
  local a = assert(quench.udp.bind("127.0.0.1", 0, opts))
  local b = assert(quench.udp.bind("127.0.0.1", 0, opts))
  local _, port_a = a:getsockname()
  local _, port_b = b:getsockname()
  return a, port_a, b, port_b
end

describe("udp", function()
  it("binds to an ephemeral loopback port and says where", T(function()
    local s <close> = assert(quench.udp.bind("127.0.0.1", 0))
    local host, port = s:getsockname()
    assert.are.equal("127.0.0.1", host)
    assert.is_true(port > 0)
    assert.matches("^quench.udp %(127.0.0.1:%d+, 0 queued%)$", tostring(s))
  end))

  it("sends and receives datagrams with the sender's address", T(function()
    local a, port_a, b, port_b = pair()
    local _a <close> = a
    local _b <close> = b
    assert.is_true(a:send("hello", "127.0.0.1", port_b))
    assert.are.same({ "hello", "127.0.0.1", port_a }, { bounded(b.recv, b) })
    assert.is_true(b:send("", "127.0.0.1", port_a))          -- an empty datagram is one
    assert.are.same({ "", "127.0.0.1", port_b }, { bounded(a.recv, a) })
    local big = string.rep("x", 60000)
    assert.is_true(a:send(big, "localhost", port_b))
    assert.are.equal(big, (bounded(b.recv, b)))
  end))

  it("recv(max) keeps the first max bytes of a datagram and drops the rest", T(function()
    local a, _, b, port_b = pair()
    local _a <close> = a
    local _b <close> = b
    a:send("abcdef", "127.0.0.1", port_b)
    a:send("next", "127.0.0.1", port_b)
    assert.are.equal("abc", (bounded(b.recv, b, 3)))
    assert.are.equal("next", (bounded(b.recv, b)))
  end))

  it("a waiting recv wakes when a datagram arrives", T(function()
    local a, _, b, port_b = pair()
    local _a <close> = a
    local _b <close> = b
    local got = quench.channel()
    quench.spawn(function() got:send((b:recv())) end)
    quench.yield()                                           -- it waits now
    a:send("late", "127.0.0.1", port_b)
    assert.are.equal("late", (bounded(got.recv, got)))
  end))

  it("recv_op and send_op work with select and timeout", T(function()
    local a, _, b, port_b = pair()
    local _a <close> = a
    local _b <close> = b
    assert.is_false((quench.timeout(0.01, b:recv_op())))    -- nothing came: times out
    assert.are.same({ true, true }, { quench.timeout(LIMIT, a:send_op("x", "127.0.0.1", port_b)) })
    local r = { quench.select(b:recv_op(), quench.sleep_op(LIMIT)) }
    assert.are.equal(1, r[1])
    assert.are.equal("x", r[2])
  end))

  it("cancel safety: dropped recvs lose and duplicate no datagram", T(function()
    -- The window keeps at most 16 datagrams in flight, under the queue
    -- bound, so neither the socket's queue nor the kernel drops any: every
    -- loss would be quench's. Every wait is bounded, and a stuck run says
    -- where it stopped and what became of the sender.
    local N = 1500
    local a, _, b, port_b = pair()
    local _a <close> = a
    local _b <close> = b
    local window = quench.channel(16)    -- one entry per datagram in flight
    local sender = quench.spawn(function()
      for i = 1, N do
        window:send(i)
        assert(a:send(tostring(i), "127.0.0.1", port_b))
      end
    end)
    local x = 7
    local function rng(n)
      x = (x * 1103515245 + 12345) % 2147483648
      return 1 + x % n
    end
    local got = {}
    local function stuck()
      local why = ("stuck after %d of %d datagrams: sender %s"):format(#got, N, sender:state())
      if sender:done() then why = why .. " (" .. tostring(select(2, sender:join())) .. ")" end
      return why .. ", " .. tostring(b)
    end
    local deadline = quench.now() + 60
    while #got < N do
      if quench.now() >= deadline then error(stuck()) end
      local how, v = rng(4), nil
      if how == 1 then
        local ok, d, e = quench.timeout(LIMIT, b.recv, b)
        if not ok then error(stuck()) end
        v = assert(d, e)
      elseif how == 2 then
        local r = { quench.select(b:recv_op(), quench.sleep_op(rng(3) / 2000)) }
        if r[1] == 1 then v = r[2] end
      elseif how == 3 then
        local ok, d = quench.timeout(rng(3) / 2000, b.recv, b)
        if ok then v = d end
      else
        local h = quench.spawn(function() v = b:recv() end)
        quench.sleep(rng(3) / 2000)
        h:abort()
      end
      if v then
        got[#got + 1] = tonumber(v)
        assert(window:try_recv())
      end
    end
    bounded(sender.join, sender)
    for i = 1, N do
      if got[i] ~= i then error("datagram " .. i .. ": got " .. tostring(got[i])) end
    end
  end))

  it("a datagram handed to a recv that is dropped before it returns goes back to the front",
    T(function()
      local a, _, b, port_b = pair()
      local _a <close> = a
      local _b <close> = b
      -- Both recvs wait; one read turn hands "1" to the first and "2" to the
      -- second; the biased select returns the first and drops the second.
      a:send("1", "127.0.0.1", port_b)
      a:send("2", "127.0.0.1", port_b)
      local i, d = quench.select_biased(b:recv_op(), b:recv_op())
      assert.are.same({ 1, "1" }, { i, d })
      assert.are.equal("2", (bounded(b.recv, b)))
      -- Two tasks wait; the first, woken with "3", aborts the second, which
      -- was woken with "4" but had not run yet.
      local second
      local first = quench.spawn(function()
        local v = b:recv()
        second:abort()
        return v
      end)
      second = quench.spawn(function() return b:recv() end)
      quench.yield()
      a:send("3", "127.0.0.1", port_b)
      a:send("4", "127.0.0.1", port_b)
      assert.are.same({ true, "3" }, { bounded(first.join, first) })
      assert.is_false((second:join()))
      assert.are.equal("4", (bounded(b.recv, b)))
      assert.is_false((quench.timeout(0.01, b.recv, b)))
    end))

  it("keeps at most recv_queue datagrams; the kernel holds the rest meanwhile", T(function()
    local a, _, b, port_b = pair({ recv_queue = 4 })
    local _a <close> = a
    local _b <close> = b
    assert.is_false((quench.timeout(0.001, b.recv, b)))      -- reading has started
    for i = 1, 10 do a:send(tostring(i), "127.0.0.1", port_b) end
    quench.sleep(0.02)
    local queued = tonumber(tostring(b):match("(%d+) queued"))
    assert.is_true(queued <= 4)
    for i = 1, 10 do assert.are.equal(tostring(i), (bounded(b.recv, b))) end
  end))

  it("close wakes a waiting recv, and a closed socket raises", T(function()
    local s = assert(quench.udp.bind("127.0.0.1", 0))
    local res = quench.channel()
    quench.spawn(function() res:send({ s:recv() }) end)
    quench.yield()
    s:close()
    assert.are.same({ nil, "ECANCELED: operation canceled", "ECANCELED" }, bounded(res.recv, res))
    assert.is_true(s:is_closed())
    assert.is_true(s:close())                                 -- idempotent
    assert.has_error(function() s:recv() end, "quench.udp:recv: attempt to use a closed socket")
    assert.has_error(function() s:send("x", "127.0.0.1", 9) end,
      "quench.udp:send: attempt to use a closed socket")
    assert.has_error(function() s:getsockname() end,
      "quench.udp:getsockname: attempt to use a closed socket")
    assert.are.equal("quench.udp (closed)", tostring(s))
  end))

  it("closes at scope exit as a <close> variable, and when its task is aborted", T(function()
    local kept
    do
      local s <close> = assert(quench.udp.bind("127.0.0.1", 0))
      kept = s
    end
    assert.is_true(kept:is_closed())
    local started = quench.channel()
    local h = quench.spawn(function()
      local s <close> = assert(quench.udp.bind("127.0.0.1", 0))
      kept = s
      started:send(true)
      s:recv()
    end)
    bounded(started.recv, started)
    assert.is_false(kept:is_closed())
    h:abort()
    assert.is_true(kept:is_closed())
  end))

  it("reports failures as nil, message, code", T(function()
    local s <close> = assert(quench.udp.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    local r = { quench.udp.bind("127.0.0.1", port) }
    assert.are.same({ nil, "EADDRINUSE: address already in use", "EADDRINUSE" }, r)
    r = { quench.udp.bind("no.such.host.invalid", 0) }
    assert.is_nil(r[1])
    assert.matches("^EAI_", r[3])
    local _named <close> = assert(quench.udp.bind("localhost", 0))  -- a name is resolved
    local any <close> = assert(quench.udp.bind(nil, 0))             -- every IPv4 address
    assert.are.equal("0.0.0.0", (any:getsockname()))
    r = { s:send("x", "nowhere", 1) }
    assert.is_nil(r[1])
    assert.are.equal("EINVAL", r[3])
    assert.has_error(function() s:send("x", "127.0.0.1", 70000) end,
      "bad argument #3 to 'send' (port must be in 0..65535)")
    assert.has_error(function() s:recv(0) end, "bad argument #1 to 'recv' (max must be at least 1)")
  end))

  it("works over IPv6 loopback when the host has it", T(function()
    local a = quench.udp.bind("::1", 0)
    if not a then return end                                  -- no IPv6 here: nothing to show
    local _a <close> = a
    local b <close> = assert(quench.udp.bind("::1", 0))
    local _, port_b = b:getsockname()
    local _, port_a = a:getsockname()
    assert.is_true(a:send("six", "::1", port_b))
    assert.are.same({ "six", "::1", port_a }, { bounded(b.recv, b) })
  end))

  it("a socket outliving its runtime is closed by the runtime's end", function()
    local s
    quench.run(function()
      s = assert(quench.udp.bind("127.0.0.1", 0))
      local _, port = s:getsockname()
      for i = 1, 3 do s:send(tostring(i), "127.0.0.1", port) end
      assert.are.equal("1", (bounded(s.recv, s)))              -- the others may be queued
    end)
    assert.is_true(s:is_closed())
    assert.are.equal("quench.udp (closed)", tostring(s))
    assert.has_error(function() s:getsockname() end, "quench.udp:getsockname: the socket's "
      .. "runtime has ended (a socket belongs to the quench.run that made it)")
    assert.has_error(function() s:recv() end, "quench.udp:recv: the socket's runtime has ended "
      .. "(a socket belongs to the quench.run that made it)")
    assert.is_true(s:close())
    s = nil
    collectgarbage()
    collectgarbage()
  end)

  it("needs a running runtime to bind", function()
    assert.has_error(function() quench.udp.bind("127.0.0.1", 0) end,
      "quench.udp.bind: not inside quench.run")
  end)
end)
