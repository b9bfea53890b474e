-- TCP (issue: TCP; docs/design.md §3 names, S3, S14): quench.tcp over loopback only,
-- on the real clock (I/O). Tasks synchronize with channels, joins and the
-- data itself, never with sleeps; a timeout is only ever the thing tested.
local quench = require "quench"
local tcp = quench.tcp

local function T(fn) return quench.test(fn, { clock = "real" }) end

-- A listener on host:0 with a connected client and the accepted stream.
local function pair(host, listen_opts, connect_opts)
  host = host or "127.0.0.1"
  local server = assert(tcp.listen(host, 0, listen_opts))
  local _, port = server:getsockname()
  local client = assert(tcp.connect(host, port, connect_opts))
  local accepted = assert(server:accept())
  return server, client, accepted, port
end

-- Is IPv6 loopback usable here? Asked once, in a runtime of its own.
local has_ipv6 = quench.run(function()
  local s = tcp.listen("::1", 0)
  if s then s:close() end
  return s ~= nil
end)

-- A deterministic generator (the same on every run).
local function rng_for(seed)
  local x = seed
  return function(a, b)
    x = (x * 1103515245 + 12345) % 2147483648
    if b == nil then a, b = 1, a end
    return a + x % (b - a + 1)
  end
end

-- Pseudo-random bytes, '\n' included.
local function random_bytes(rng, n)
  local t = {}
  for i = 1, n do t[i] = string.char(rng(0, 255)) end
  return table.concat(t)
end

-- The byte stream of the large transfers: PATTERN repeated. A received
-- chunk is checked whole against the expected bytes (a string compare, so
-- memcmp speed): every byte is checked, cheaply.
local PATTERN = random_bytes(rng_for(99), 65521)   -- a prime length: chunks never align
local PATTERN2 = PATTERN .. PATTERN

local function expected(pos, n)                    -- n bytes from stream position pos (0-based)
  local parts = {}
  while n > 0 do
    local off = pos % #PATTERN
    local k = math.min(n, #PATTERN)
    parts[#parts + 1] = PATTERN2:sub(off + 1, off + k)
    pos, n = pos + k, n - k
  end
  return table.concat(parts)
end

describe("quench.tcp", function()
  it("connects from a chosen local address and port (local_host, local_port)", function()
    quench.run(function()
      local server = assert(tcp.listen("127.0.0.1", 0))
      local _, port = server:getsockname()
      local probe = assert(tcp.listen("127.0.0.4", 0))   -- a free local port, then freed
      local _, lport = probe:getsockname()
      probe:close()
      local c = assert(tcp.connect("127.0.0.1", port, { local_host = "127.0.0.4", local_port = lport }))
      local a = assert(server:accept())
      assert.are.same({ "127.0.0.4", lport }, { a:getpeername() })
      local op = tcp.connect_op("127.0.0.1", port, { local_host = "127.0.0.5" })
      local c2 = assert(op:await())
      local a2 = assert(server:accept())
      assert.are.equal("127.0.0.5", (a2:getpeername()))
      assert.has_error(function() tcp.connect("127.0.0.1", port, { local_host = "localhost" }) end,
        "quench.tcp.connect: opts.local_host must be a numeric IP address, got 'localhost'")
      assert.has_error(function() tcp.connect("127.0.0.1", port, { local_port = 70000 }) end,
        "quench.tcp.connect: opts.local_port must be an integer in 0..65535")
      local none, msg = tcp.connect("127.0.0.1", port, { local_host = "192.0.2.1" })
      assert.is_nil(none)
      assert.matches("^EADDRNOTAVAIL", msg)
      for _, o in ipairs { c, a, c2, a2, server } do o:close() end
    end)
  end)

  for _, host in ipairs({ "127.0.0.1", "::1" }) do
    it("echoes over " .. host .. ", with the addresses of both ends", function()
      if host == "::1" and not has_ipv6 then
        pending("IPv6 loopback (::1) is not available here")
        return
      end
      quench.run(function()
        local server = assert(tcp.listen(host, 0))
        local shost, port = server:getsockname()
        assert.are.equal(host, shost)
        assert.is_true(port > 0)
        local echo = quench.spawn(function()
          local s <close> = assert(server:accept())
          for data in function() return s:read_some(4096) end do assert(s:write(data)) end
          return s:getpeername()
        end)
        local c <close> = assert(tcp.connect(host, port, { nodelay = true }))
        local chost, cport = c:getsockname()
        assert.are.equal(host, chost)
        local phost, pport = c:getpeername()
        assert.are.same({ host, port }, { phost, pport })
        for i = 1, 50 do
          local msg = ("message %d "):format(i):rep(i)
          assert.are.equal(c, c:write(msg))
          assert.are.equal(msg, c:read(#msg))
        end
        assert.is_true(c:shutdown())
        assert.is_nil(c:read_some())                 -- the echo closed: EOF
        assert.are.same({ true, host, cport }, { echo:join() })
        server:close()
      end)
    end)
  end

  it("reads with Lua's io formats: n, l, L, a, lines; fewer than n only at EOF", T(function()
    local _, c, s = pair()
    c:write("first\nsecond\r\n", 12345, "\n", "abcdef", "\nno newline")
    c:close()
    assert.are.equal("first", s:read())              -- default "l"
    assert.are.equal("second\r\n", s:read("L"))
    assert.are.equal("12345", s:read("*l"))
    assert.are.equal("", s:read(0))
    assert.are.equal("abc", s:read(3))
    local lines = {}
    for line in s:lines() do lines[#lines + 1] = line end
    assert.are.same({ "def", "no newline" }, lines)  -- the last line has no "\n"
    assert.are.equal("", s:read("a"))                -- "a" never fails: "" at EOF
    assert.is_nil(s:read("l"))
    assert.is_nil(s:read(1))
    assert.is_nil(s:read(0))
    assert.is_nil(s:read_some())

    local _, c2, s2 = pair()
    c2:write("12345")
    c2:close()
    assert.are.equal("12345", s2:read(10))           -- fewer: the stream ended
    assert.is_nil(s2:read(10))

    local _, c3, s3 = pair()
    c3:write(("x"):rep(100))
    assert.are.equal(("x"):rep(10), s3:read_some(10))
    assert.are.equal(("x"):rep(90), s3:read(90))
    c3:write("tail")
    c3:close()
    assert.are.equal("tail", s3:read("a"))
    assert.has_error(function() s3:read("n") end)
    assert.has_error(function() s3:read(-1) end)
    assert.has_error(function() s3:read_some(0) end)
  end))

  it("half-closes: after shutdown the peer reads EOF and can still answer", T(function()
    local _, c, s = pair()
    local peer = quench.spawn(function()
      local request = s:read("a")                    -- everything until the client's EOF
      s:write("got ", #request, " bytes")
      s:close()
      return request
    end)
    local body = ("0123456789"):rep(100000)          -- 1 MB
    c:write(body)
    assert.is_true(c:shutdown())
    assert.has_error(function() c:write("more") end,
      "quench.tcp.stream:write: the stream's write side was shut down (no writes after shutdown)")
    assert.has_error(function() c:shutdown() end,
      "quench.tcp.stream:shutdown: the stream's write side was already shut down")
    assert.are.equal("got 1000000 bytes", c:read("a"))
    local ok, request = peer:join()
    assert.is_true(ok)
    assert.are.equal(body, request)
    c:close()
  end))

  it("moves 64 MiB each way, checked byte for byte", T(function()
    local SIZE = 64 * 1024 * 1024
    local _, c, s = pair()
    local sender = quench.spawn(function()
      local sent = 0
      while sent < SIZE do
        local k = math.min(#PATTERN, SIZE - sent)
        assert(c:write(k == #PATTERN and PATTERN or PATTERN:sub(1, k)))
        sent = sent + k
      end
      assert(c:shutdown())
    end)
    -- receive with read_some, as it comes
    local pos = 0
    for chunk in function() return s:read_some(1 << 20) end do
      if chunk ~= expected(pos, #chunk) then error("bytes differ near position " .. pos) end
      pos = pos + #chunk
    end
    assert.are.equal(SIZE, pos)
    assert.is_true(sender:join())
    -- and back, received with read(n) in odd sizes
    local back = quench.spawn(function()
      local sent = 0
      while sent < SIZE do
        local k = math.min(#PATTERN, SIZE - sent)
        assert(s:write(k == #PATTERN and PATTERN or PATTERN:sub(1, k)))
        sent = sent + k
      end
      s:close()                                    -- queued data is still delivered
    end)
    pos = 0
    local rng = rng_for(5)
    while true do
      local want = rng(1, 3 * 65536)
      local chunk = c:read(want)
      if chunk == nil then break end
      if chunk ~= expected(pos, #chunk) then error("bytes differ near position " .. pos) end
      assert(#chunk == want or pos + #chunk == SIZE, "short read before EOF")
      pos = pos + #chunk
    end
    assert.are.equal(SIZE, pos)
    assert.is_true(back:join())
    c:close()
  end))

  it("serves many concurrent connections", T(function()
    -- Each connection costs two descriptors here (both ends are ours).
    local p = io.popen("ulimit -n")
    local limit = tonumber(p:read("l")) or 1024
    p:close()
    local n = math.min(1000, (limit - 64) // 2)
    if n < 1000 then
      print(("tcp_spec: ulimit -n is %d: %d concurrent connections instead of 1000"):format(limit, n))
    end
    local server = assert(tcp.listen("127.0.0.1", 0, { backlog = 2048 }))
    local _, port = server:getsockname()
    local handlers = {}
    local acceptor = quench.spawn(function()
      for i = 1, n do
        local s = assert(server:accept())
        handlers[i] = quench.spawn(function()
          local line = s:read("l")
          s:write(line, "\n")
          assert.is_nil(s:read_some())
          s:close()
        end)
      end
    end)
    local open = 0
    local all_open = quench.channel()
    local clients = {}
    for i = 1, n do
      clients[i] = quench.spawn(function()
        local c <close> = assert(tcp.connect("127.0.0.1", port))
        c:write("client ", i, "\n")
        assert.are.equal("client " .. i, c:read("l"))
        open = open + 1
        if open == n then all_open:close() end
        all_open:recv()                              -- every connection is open at once
      end)
    end
    for i = 1, n do assert.is_true((clients[i]:join())) end
    assert.is_true(acceptor:join())
    for i = 1, n do assert.is_true((handlers[i]:join())) end
    server:close()
  end))

  it("reports a reset by the peer as ECONNRESET, and later writes fail", T(function()
    local _, c, s = pair()
    c:write("hello")
    assert.are.equal("hello", s:read(5))
    assert.is_true(s:close_reset())
    local data, msg, code = c:read_some()
    assert.is_nil(data)
    assert.are.equal("ECONNRESET", code)
    assert.are.equal("ECONNRESET: connection reset by peer", msg)
    local ok, wmsg, wcode
    for _ = 1, 100 do                                 -- the first write may still be taken
      ok, wmsg, wcode = c:write("x")
      if not ok then break end
    end
    assert.is_nil(ok)
    assert.is_truthy(wcode == "EPIPE" or wcode == "ECONNRESET", wmsg)
    assert.are.same({ nil, wmsg, wcode }, { c:write("again") })   -- sticky
    c:close()
  end))

  it("reports a reset that comes after unread data as ECONNRESET, never as a clean EOF",
    T(function()
      -- the reader's buffer and socket are full when the RST arrives; libuv
      -- calls the hang-up EOF without reading again: a cut stream must not
      -- look whole
      local _, c, s = pair("127.0.0.1", nil, { write_limit = 1 << 30 })
      s:write(("r"):rep(16 << 20))                    -- more than the kernel and c buffer
      quench.sleep(0.1)                                -- c stops reading above read_limit
      assert.is_true(s:queued() > 0)
      s:close_reset()
      local got, data, msg, code = 0
      repeat
        data, msg, code = c:read_some()
        got = got + (data and #data or 0)
      until data == nil
      assert.is_true(got < 16 << 20)
      assert.are.same({ "ECONNRESET: connection reset by peer", "ECONNRESET" }, { msg, code })
      c:close()
    end))

  it("shutdown after the peer reset the connection is true, whatever the timing", T(function()
    -- the RST has arrived (read_some saw it): shutdown(2) says ENOTCONN
    local _, c, s = pair()
    c:close_reset()
    assert.are.same({ nil, "ECONNRESET: connection reset by peer", "ECONNRESET" },
      { s:read_some() })
    assert.is_true(s:shutdown())
    s:close()
    -- at once after the reset: the same
    local _, c2, s2 = pair()
    c2:close_reset()
    assert.is_true(s2:shutdown())
    s2:close()
  end))

  it("shutdown reports the error of a queued write the reset lost", T(function()
    local _, c, s = pair("127.0.0.1", nil, { write_limit = 1 << 30 })
    s:write(("q"):rep(8 << 20))                       -- queued: c reads nothing
    assert.is_true(s:queued() > 0)
    c:close_reset()
    local ok, msg, code = s:shutdown()
    assert.is_nil(ok)
    assert.is_truthy(code == "ECONNRESET" or code == "EPIPE", msg)
    s:close()
  end))

  it("loses no byte when reads are dropped 10,000 times by timeout and select", T(function()
    local rng = rng_for(17)
    local data = random_bytes(rng, 120000)
    local _, c, s = pair()
    local writer = quench.spawn(function()
      local pos = 1
      while pos <= #data do
        local k = rng(1, 48)
        c:write(data:sub(pos, pos + k - 1))
        pos = pos + k
        quench.yield()
      end
      c:close()
    end)
    local got, attempts, dropped = {}, 0, 0
    local eof = false
    while not eof or attempts < 10000 do
      attempts = attempts + 1
      local how = rng(4)
      local ok, v
      if how == 1 then
        ok, v = quench.timeout(0, s.read, s, rng(1, 100))
      elseif how == 2 then
        ok, v = quench.timeout(0, s:read_op("L"))
      elseif how == 3 then
        local i, r = quench.select(s:read_some_op(rng(1, 64)), quench.sleep_op(0))
        ok, v = i == 1, r
      else
        local i, r = quench.select_biased(quench.sleep_op(0), s:read_op(rng(1, 30)))
        ok, v = i == 2, r
      end
      if not ok then
        dropped = dropped + 1
        quench.yield()                                -- a ready deadline never suspends: let the writer run
      elseif v == nil then
        eof = true
      else
        got[#got + 1] = v
      end
    end
    assert.is_true(writer:join())
    assert.is_true(dropped > 1000, "only " .. dropped .. " reads were dropped")
    local all = table.concat(got)
    assert.are.equal(#data, #all)
    assert.is_true(all == data, "the bytes differ")
  end))

  it("keeps connections queued while nobody accepts, and under a select", T(function()
    local server = assert(tcp.listen("127.0.0.1", 0))
    local _, port = server:getsockname()
    local clients = {}
    for i = 1, 5 do                                    -- connected although nobody accepts
      clients[i] = assert(tcp.connect("127.0.0.1", port))
      clients[i]:write(i, "\n")
    end
    local ch = quench.channel()
    local accepted, rounds = {}, 0
    while #accepted < 5 do                             -- accept_op dropped over and over
      rounds = rounds + 1
      local i, s = quench.select(ch:recv_op(), server:accept_op(), quench.sleep_op(0))
      if i == 2 then accepted[#accepted + 1] = s else quench.yield() end
    end
    local seen = {}
    for _, s in ipairs(accepted) do seen[#seen + 1] = tonumber(s:read("l")) end
    table.sort(seen)
    assert.are.same({ 1, 2, 3, 4, 5 }, seen)
    -- a select waiting in accept_op gets the next connection
    local later = quench.spawn(function()
      local c = assert(tcp.connect("127.0.0.1", port))
      c:write("late\n")
      return c
    end)
    local i, s = quench.select(ch:recv_op(), server:accept_op())
    assert.are.equal(2, i)
    assert.are.equal("late", s:read("l"))
    later:join()
    -- a timed-out accept leaves the connection for the next accept
    assert.are.same({ false }, { (quench.timeout(0, server.accept, server)) })
    server:close()
  end))

  it("resolves host names for listen and connect", T(function()
    local server = assert(tcp.listen("localhost", 0))
    local host, port = server:getsockname()
    assert.is_truthy(host == "127.0.0.1" or host == "::1", host)
    local c = assert(tcp.connect("localhost", port))    -- every address is tried in turn
    local s = assert(server:accept())
    c:write("by name\n")
    assert.are.equal("by name", s:read())
    c:close()
    s:close()
    server:close()
  end))

  it("returns nil, message, code when the connection is refused", T(function()
    local server = assert(tcp.listen("127.0.0.1", 0))
    local _, port = server:getsockname()
    server:close()                                     -- nobody listens there now
    assert.are.same({ nil, "ECONNREFUSED: connection refused", "ECONNREFUSED" },
      { tcp.connect("127.0.0.1", port) })
    local i, r1, r2, r3 = quench.select(tcp.connect_op("127.0.0.1", port))
    assert.are.same({ 1, nil, "ECONNREFUSED: connection refused", "ECONNREFUSED" },
      { i, r1, r2, r3 })
    local bad = { tcp.connect("name.invalid", 80) }
    assert.is_nil(bad[1])
    assert.is_truthy(bad[3]:match("^EAI_"), bad[2])
  end))

  it("cancels a connect under quench.timeout cleanly", T(function()
    local server = assert(tcp.listen("127.0.0.1", 0, { backlog = 1 }))
    local _, port = server:getsockname()
    -- a connect that has not completed when the deadline comes
    local ok, err = quench.timeout(0, tcp.connect, "127.0.0.1", port)
    assert.is_false(ok)
    assert.is_true(quench.is_timeout(err))
    -- with nobody accepting and backlog 1, the kernel's queue fills up and
    -- a connect hangs: the timeout cancels it
    local held, timed_out = {}, false
    for _ = 1, 20 do
      local done, c = quench.timeout(0.3, tcp.connect_op("127.0.0.1", port))
      if not done then
        timed_out = true
        break
      end
      held[#held + 1] = c
    end
    assert.is_true(timed_out)
    for _, c in ipairs(held) do c:close() end
    -- the runtime is fine: a new server works
    local _, c, s = pair()
    c:write("ok\n")
    assert.are.equal("ok", s:read())
    server:close()
  end))

  it("closes a <close> stream of an aborted task: the peer sees EOF", T(function()
    local server = assert(tcp.listen("127.0.0.1", 0))
    local _, port = server:getsockname()
    local ready = quench.channel()
    local h = quench.spawn(function()
      local c <close> = assert(tcp.connect("127.0.0.1", port))
      c:write("hi")
      ready:send(true)
      c:read(1)                                        -- waits forever
    end)
    local s = assert(server:accept())
    ready:recv()
    assert.are.equal("hi", s:read(2))
    h:abort()
    assert.is_nil(s:read_some())                       -- EOF
    local ok, err = h:join()
    assert.is_false(ok)
    assert.is_true(quench.is_cancelled(err))
    -- a server held in <close> by an aborted task stops listening
    local up = quench.channel()
    local hs = quench.spawn(function()
      local srv <close> = assert(tcp.listen("127.0.0.1", 0))
      up:send((select(2, srv:getsockname())))
      srv:accept()
    end)
    local sport = up:recv()
    hs:abort()
    assert.are.equal("ECONNREFUSED", select(3, tcp.connect("127.0.0.1", sport)))
    server:close()
  end))

  it("closes a stream that is garbage collected (never a task)", T(function()
    local server = assert(tcp.listen("127.0.0.1", 0))
    local _, port = server:getsockname()
    local function forget()                            -- no register of ours keeps it
      local c = assert(tcp.connect("127.0.0.1", port))
      c:write("bye")
    end
    forget()
    local s = assert(server:accept())
    assert.are.equal("bye", s:read(3))
    collectgarbage()
    collectgarbage()
    assert.is_nil(s:read_some())
    server:close()
  end))

  it("delivers what close found queued, and never writes a dropped write", T(function()
    local LIMIT = 64 * 1024
    local _, c, s = pair("127.0.0.1", { read_limit = LIMIT }, { write_limit = LIMIT })
    local chunk = ("w"):rep(64 * 1024)
    local written = 0
    while true do                                      -- the reader reads nothing
      local ok = quench.timeout(0.2, c.write, c, chunk)
      if not ok then break end                         -- dropped while waiting: wrote nothing
      written = written + #chunk
      assert(written < 256 * 1024 * 1024, "writes never waited")
    end
    assert.is_true(c:queued() > LIMIT)                 -- waiting because the queue is full
    assert.is_true(s:buffered() <= LIMIT + 16 * 1024)  -- the reader's buffer stayed bounded
    c:close()                                          -- lingers until the queue is written
    local total = 0
    for data in function() return s:read_some() end do total = total + #data end
    assert.are.equal(written, total)
  end))

  it("raises on misuse, naming the function", T(function()
    local server, c, s = pair()
    local reader = quench.spawn(function() return s:read(1) end)
    quench.yield()                                      -- reader waits in s:read
    assert.has_error(function() s:read(1) end,
      "quench.tcp.stream:read: another read is waiting on this stream (one reader at a time)")
    assert.has_error(function() s:read_some() end,
      "quench.tcp.stream:read_some: another read is waiting on this stream (one reader at a time)")
    assert.has_error(function() quench.select(s:read_op(1)) end,
      "quench.tcp.stream:read_op: another read is waiting on this stream (one reader at a time)")
    s:close()                                           -- the waiting read ends
    assert.are.same({ true, nil, "ECANCELED: operation canceled", "ECANCELED" },
      { reader:join() })
    assert.has_error(function() s:read(1) end, "quench.tcp.stream:read: attempt to use a closed stream")
    assert.has_error(function() s:write("x") end,
      "quench.tcp.stream:write: attempt to use a closed stream")
    assert.has_error(function() s:getpeername() end,
      "quench.tcp.stream:getpeername: attempt to use a closed stream")
    assert.is_true(s:close())                           -- close is idempotent
    assert.are.equal("quench.tcp.stream (closed)", tostring(s))
    -- one writer at a time: fill the queue so that a write waits
    local _, w, r = pair("127.0.0.1", nil, { write_limit = 1024 })
    local big = ("z"):rep(1 << 20)
    local writer = quench.spawn(function()
      while true do w:write(big) end
    end)
    quench.yield()
    while w:queued() <= 1024 do quench.yield() end
    assert.has_error(function() w:write("x") end,
      "quench.tcp.stream:write: another write is waiting on this stream (one writer at a time)")
    writer:abort()
    w:close()
    r:close()
    assert.has_error(function() tcp.listen("127.0.0.1", 0, { nodely = true }) end,
      "quench.tcp.listen: unknown option 'nodely'")
    assert.has_error(function() tcp.connect("127.0.0.1", 70000) end)
    assert.has_error(function() tcp.connect("127.0.0.1", 80, { read_limit = 0 }) end)
    c:close()
    server:close()
    assert.has_error(function() server:accept() end,
      "quench.tcp.server:accept: attempt to use a closed server")
  end))

  it("closes what is left open when the runtime ends; the objects then raise", function()
    local server, client, accepted = quench.run(function()
      local srv, c, s = pair("127.0.0.1", { backlog = 1 }, { write_limit = 1 << 30 })
      local big = ("q"):rep(8 << 20)
      c:write(big)                                     -- more than the kernel takes: queued
      local _, lingering = pair()
      lingering:write(big)
      lingering:close()                                -- lingers: its peer reads nothing
      local _, port = srv:getsockname()
      for _ = 1, 3 do                                  -- accepted and queued, or left to libuv
        assert(tcp.connect("127.0.0.1", port))
      end
      quench.spawn(function() return s:read(1 << 30) end)   -- waits when the run ends
      return srv, c, s
    end)
    assert.has_error(function() client:write("x") end,
      "quench.tcp.stream:write: the stream's runtime has ended "
      .. "(a stream belongs to the quench.run that made it)")
    assert.is_true(accepted:close())                   -- a no-op now
    assert.has_error(function() quench.run(function() return server:accept() end) end,
      "quench.tcp.server:accept: the server's runtime has ended "
      .. "(a server belongs to the quench.run that made it)")
    assert.has_error(function() tcp.listen("127.0.0.1", 0) end,
      "quench.tcp.listen: not inside quench.run")
    server, client, accepted = nil, nil, nil           -- luacheck: ignore
    collectgarbage()
    collectgarbage()
  end)

  it("still shuts down when a shutdown is dropped; a connect dropped while resolving "
    .. "leaves nothing", T(function()
    local _, c, s = pair()
    c:write("data")
    local ok = quench.timeout(0, c.shutdown, c)        -- the request is libuv's now
    assert.is_false(ok)
    assert.has_error(function() c:write("x") end,
      "quench.tcp.stream:write: the stream's write side was shut down (no writes after shutdown)")
    assert.are.equal("data", s:read("a"))              -- EOF came: the shutdown happened
    local _, port = s:getsockname()
    ok = quench.timeout(0, tcp.connect, "localhost", port)   -- dropped during the lookup
    assert.is_false(ok)
    c:close()
    s:close()
  end))

  it("lets several processes' listeners share a port with reuseport", T(function()
    local a = assert(tcp.listen("127.0.0.1", 0, { reuseport = true }))
    local _, port = a:getsockname()
    local b = assert(tcp.listen("127.0.0.1", port, { reuseport = true }))
    assert.are.same({ nil, "EADDRINUSE: address already in use", "EADDRINUSE" },
      { tcp.listen("127.0.0.1", port) })
    local c = assert(tcp.connect("127.0.0.1", port))
    local i, s = quench.select(a:accept_op(), b:accept_op())
    assert.is_truthy(i == 1 or i == 2)
    c:write("x")
    assert.are.equal("x", s:read(1))
    c:close()
    a:close()
    b:close()
  end))

  it("sets nodelay and keepalive, also on accepted streams", T(function()
    local server, c, s = pair("127.0.0.1", { nodelay = true, keepalive = 30 },
      { nodelay = true, keepalive = true })
    assert.is_true(c:nodelay(false))
    assert.is_true(c:keepalive(true, 10))
    assert.is_true(s:keepalive(false))
    assert.are.equal(c, select(2, quench.select(c:write_op("ping"))))
    assert.are.equal("ping", s:read(4))
    assert.matches("quench.tcp.stream %(open%)", tostring(c))
    assert.matches("quench.tcp.server %(listening%)", tostring(server))
    assert.are.same({ 1, true }, { quench.select(c:shutdown_op()) })
    assert.is_nil(s:read_some())
    assert.has_error(function() quench.select(c:shutdown_op()) end,
      "quench.tcp.stream:shutdown_op: the stream's write side was already shut down")
    c:close()
    s:close()
    server:close()
  end))
end)

describe("quench.tcp readiness and non-waiting I/O", function()
  it("peek returns what read_some would, and leaves it buffered", T(function()
    local server, c, s = pair()
    local peeker = quench.spawn(function() return s:peek() end)
    quench.yield()                                      -- waits: nothing buffered yet
    c:write("hello world")
    assert.are.same({ true, "hello world" }, { peeker:join() })
    assert.are.equal(11, s:buffered())                 -- nothing consumed
    assert.are.equal("hel", s:peek(3))
    assert.are.equal("hello", s:read(5))
    assert.are.equal(" world", s:peek())
    assert.are.same({ 1, " wor" }, { quench.select(s:peek_op(4)) })
    assert.are.equal(" world", s:read_some())
    c:close()
    assert.is_nil(s:peek())                            -- EOF
    s:close()
    server:close()
  end))

  it("a peek dropped while it waits loses nothing", T(function()
    local server, c, s = pair()
    assert.is_false((quench.timeout(0.05, s.peek, s)))
    c:write("x")
    assert.are.equal("x", s:read_some())
    c:close(); s:close(); server:close()
  end))

  it("readable waits until a read would not wait, and reads nothing", T(function()
    local server, c, s = pair()
    assert.are.equal(2, (quench.select(s:readable_op(), quench.sleep_op(0.05))))
    local waiter = quench.spawn(function() return s:readable() end)
    quench.yield()
    c:write("abc")
    assert.are.same({ true, true }, { waiter:join() })
    assert.are.equal(3, s:buffered())
    assert.is_true(s:readable())                       -- ready at once now
    assert.are.equal("abc", s:read(3))
    c:close()
    assert.is_true(s:readable())                       -- EOF: a read would not wait
    assert.is_nil(s:read_some())
    local _, c2, s2 = pair()
    local closed = quench.spawn(function() return s2:readable() end)
    quench.yield()
    s2:close()                                         -- closed while it waits
    assert.are.same({ true, nil, "ECANCELED: operation canceled", "ECANCELED" }, { closed:join() })
    c2:close(); s:close(); server:close()
  end))

  it("try_read never waits: bytes, EAGAIN, or nil at EOF", T(function()
    local server, c, s = pair()
    assert.are.same({ nil, "EAGAIN: resource temporarily unavailable", "EAGAIN" }, { s:try_read() })
    c:write("data")
    assert.is_true(s:readable())
    assert.are.equal("da", s:try_read(2))
    assert.are.equal("ta", s:try_read())
    c:close()
    assert.is_true(s:readable())
    local n, v = select("#", s:try_read()), s:try_read()
    assert.are.equal(1, n)                             -- EOF: nil alone, as read_some
    assert.is_nil(v)
    s:close(); server:close()
  end))

  it("try_write never waits: the stream, or EAGAIN with nothing written", T(function()
    local server, c, s = pair("127.0.0.1", { read_limit = 16 * 1024 }, { write_limit = 64 * 1024 })
    assert.are.equal(c, c:try_write("a", 1, "b"))
    assert.are.equal("a1b", s:read(3))
    local chunk = ("t"):rep(256 * 1024)
    local sent = 0
    while true do                                      -- s reads nothing: the queue fills
      local ok, msg, code = c:try_write(chunk)
      if not ok then
        assert.are.same({ "EAGAIN: resource temporarily unavailable", "EAGAIN" }, { msg, code })
        break
      end
      sent = sent + #chunk
      assert(sent < 256 * 1024 * 1024, "try_write never refused")
    end
    local queued = c:queued()
    assert.is_true(queued > 64 * 1024)
    assert.is_nil((c:try_write("x")))
    assert.are.equal(queued, c:queued())               -- a refused try_write wrote nothing
    -- writable: waits until the queue is back under write_limit
    assert.are.equal(2, (quench.select(c:writable_op(), quench.sleep_op(0.05))))
    local reader = quench.spawn(function() return #assert(s:read(sent)) end)
    assert.is_true(c:writable())
    assert.is_true(c:queued() <= 64 * 1024)
    assert.are.equal(c, c:try_write("end"))
    assert.are.same({ true, sent }, { reader:join() })
    assert.are.equal("end", s:read(3))
    c:close(); s:close(); server:close()
  end))

  it("raises on misuse, naming the function", T(function()
    local server, c, s = pair()
    local reader = quench.spawn(function() return s:read(1) end)
    quench.yield()
    assert.has_error(function() s:try_read() end,
      "quench.tcp.stream:try_read: another read is waiting on this stream (one reader at a time)")
    assert.has_error(function() s:peek() end,
      "quench.tcp.stream:peek: another read is waiting on this stream (one reader at a time)")
    assert.has_error(function() s:readable() end,
      "quench.tcp.stream:readable: another read is waiting on this stream (one reader at a time)")
    assert.has_error(function() quench.select(s:peek_op()) end,
      "quench.tcp.stream:peek_op: another read is waiting on this stream (one reader at a time)")
    assert.has_error(function() quench.select(s:readable_op()) end,
      "quench.tcp.stream:readable_op: another read is waiting on this stream (one reader at a time)")
    assert.has_error(function() c:try_write({}) end,
      "quench.tcp.stream:try_write: argument #1 must be a string or a number, got table")
    c:write("z")
    assert.are.same({ true, "z" }, { reader:join() })
    s:close()
    for _, m in ipairs({ "peek", "readable", "writable", "try_read", "try_write" }) do
      assert.has_error(function() s[m](s) end,
        "quench.tcp.stream:" .. m .. ": attempt to use a closed stream")
    end
    c:close(); server:close()
  end))

  it("try_read and try_write raise once the stream's runtime has ended", function()
    local _, c, s = quench.run(function() return pair() end)
    assert.has_error(function() c:try_write("x") end,
      "quench.tcp.stream:try_write: the stream's runtime has ended "
      .. "(a stream belongs to the quench.run that made it)")
    assert.has_error(function() s:try_read() end,
      "quench.tcp.stream:try_read: the stream's runtime has ended "
      .. "(a stream belongs to the quench.run that made it)")
  end)
end)
