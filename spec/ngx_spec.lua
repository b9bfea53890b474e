-- quench.ngx (docs/openresty.md): OpenResty's cosocket API and ngx helpers,
-- then Debian's unmodified OpenResty drivers (lua-nginx-redis as
-- resty.redis, lua-nginx-memcached as resty.memcached) through it against
-- real redis-server and memcached processes, started here on free loopback
-- ports and stopped by PID. A missing server binary fails these specs.
-- I/O runs on the real clock; every wait is bounded (LIMIT).
local quench = require "quench"
local ngxq = require "quench.ngx"
local pool = require "quench.pool"
local servers = require "helpers.servers"

local ngx = ngxq.install()

-- The peers (below) a test started; aborted when its body returns.
local peers = {}

local function T(fn)
  return quench.test(function()
    peers = {}
    fn()
    for _, h in ipairs(peers) do h:abort() end
  end, { clock = "real" })
end

local LIMIT = 10   -- seconds: no wait in these specs may take longer

local function bounded(fn, ...)
  local r = table.pack(quench.timeout(LIMIT, fn, ...))
  assert(r[1], "timed out: a wait that should have ended did not")
  return table.unpack(r, 2, r.n)
end

-- A one-connection TCP peer in this runtime: `script(stream)` plays the
-- server side of the first connection. Returns the port and its task.
local function peer(script)
  local server = assert(quench.tcp.listen("127.0.0.1", 0))
  local _, port = server:getsockname()
  local h = quench.spawn(function()
    local s <close> = server
    local c <close> = s:accept()
    if c then script(c) end
  end)
  peers[#peers + 1] = h
  return port, h
end

-- A cosocket connected to the local port, with a 2 s timeout.
local function connected(port)
  local sock = ngx.socket.tcp()
  sock:settimeout(2000)
  assert(sock:connect("127.0.0.1", port))
  return sock
end

-- ntasks tasks each connect, set and keep alive, over and over, through a
-- driver (resty.redis or resty.memcached) against a server of our own; the
-- server is killed once they run. Each task must stop after its third
-- error, not hang. Returns the tasks' {oks, errors}.
local function kill_server_mid_way(own, driver, ntasks)
  local running = quench.channel()
  local tasks = {}
  for t = 1, ntasks do
    tasks[t] = quench.spawn(function()
      local errors, oks = 0, 0
      for i = 1, 2000 do
        local c = driver:new()
        c:set_timeout(1000)
        local ok = c:connect("127.0.0.1", own.port)
        if ok then ok = c:set("k" .. t, i) end
        if ok then oks = oks + 1; c:set_keepalive() else errors = errors + 1 end
        if i == 5 and t == 1 then running:send(true) end
        if errors >= 3 then break end
      end
      return oks, errors
    end)
  end
  bounded(running.recv, running)
  own:kill()
  local results = {}
  for t = 1, #tasks do
    local ok, oks, errors = bounded(tasks[t].join, tasks[t])
    assert.is_true(ok)
    results[t] = { oks = oks, errors = errors }
  end
  return results
end

describe("quench.ngx helpers", function()
  it("ngx.null is a light userdata sentinel, unpack and ngx are globals after install", function()
    assert.are.equal("userdata", type(ngx.null))
    assert.are.equal(ngx, _G.ngx)
    assert.are.equal(table.unpack, _G.unpack)
    assert.are.equal(4, ngx.ERR)
    assert.are.equal(8, ngx.DEBUG)
  end)

  it("md5, md5_bin, sha1_bin give the standard digests", function()
    assert.are.equal("d41d8cd98f00b204e9800998ecf8427e", ngx.md5(""))
    assert.are.equal("900150983cd24fb0d6963f7d28e17f72", ngx.md5("abc"))
    assert.are.equal(16, #ngx.md5_bin("abc"))
    local hex = ngx.sha1_bin("abc"):gsub(".", function(c) return string.format("%02x", c:byte()) end)
    assert.are.equal("a9993e364706816aba3e25717850c26c9cd0d89d", hex)
    assert.has_error(function() ngx.md5({}) end)
  end)

  it("crc32_short and crc32_long are CRC-32 (IEEE)", function()
    assert.are.equal(0xCBF43926, ngx.crc32_short("123456789"))
    assert.are.equal(0xCBF43926, ngx.crc32_long("123456789"))
    assert.are.equal(0, ngx.crc32_short(""))
  end)

  it("encode_base64 and decode_base64 round-trip; bad input decodes to nil", function()
    for _, s in ipairs({ "", "f", "fo", "foo", "foob", "fooba", "foobar", "\0\255\128" }) do
      assert.are.equal(s, ngx.decode_base64(ngx.encode_base64(s)))
    end
    assert.are.equal("Zm9vYg==", ngx.encode_base64("foob"))
    assert.are.equal("Zm9vYg", ngx.encode_base64("foob", true))
    assert.are.equal("foob", ngx.decode_base64("Zm9vYg"))
    assert.is_nil(ngx.decode_base64("Zm9v!"))
    assert.is_nil(ngx.decode_base64("Z"))
  end)

  it("escape_uri and unescape_uri", function()
    assert.are.equal("a%20b%2Fc%3F%26~-._", ngx.escape_uri("a b/c?&~-._"))
    assert.are.equal("a b/c?& +", ngx.unescape_uri("a%20b%2Fc%3F%26+%2B"))
    assert.are.equal("100%", ngx.unescape_uri("100%"))
    assert.are.equal("", ngx.escape_uri(nil))
  end)

  it("log writes at or above the level to the sink, and refuses a bad level", function()
    local got = {}
    local sink, level = ngxq.log_sink, ngxq.log_level
    ngxq.log_sink = function(l, msg) got[#got + 1] = l .. ":" .. msg end
    ngx.log(ngx.ERR, "a", 1, nil, ngx.null)
    ngx.log(ngx.INFO, "dropped")
    ngxq.log_sink, ngxq.log_level = sink, level
    assert.are.same({ "4:a1nilnull" }, got)
    assert.has_error(function() ngx.log("x", "y") end,
                     "bad argument #1 to 'log' (a log level such as ngx.ERR expected, got x)")
  end)

  it("now and time are wall-clock epoch seconds", function()
    local t = os.time()
    assert.is_true(math.abs(ngx.time() - t) <= 1)
    assert.is_true(math.abs(ngx.now() - t) <= 1.5)
    assert.is_false(ngx.worker.exiting())
  end)

  it("timer.at calls back after the delay (virtual clock), sleep waits", quench.test(function()
    local got = {}
    local function cb(premature, a) got[#got + 1] = { premature, a, quench.now() } end
    assert.is_true(ngx.timer.at(2, cb, "x"))
    ngx.sleep(1)
    assert.are.equal(0, #got)
    ngx.sleep(1.5)
    assert.are.same({ { false, "x", 2 } }, got)
    assert.has_error(function() ngx.timer.at(-1, print) end)
  end))

  it("timers still pending when the run ends are called with premature = true, in order",
     function()
    local got = {}
    local function cb(premature, a, b)
      got[#got + 1] = { premature, a, b, ngx.worker.exiting() }
      -- a timer made while exiting is refused, as OpenResty refuses it
      if a == "first" then got[#got + 1] = { ngx.timer.at(0, cb, "late") } end
    end
    quench.run({ clock = "virtual" }, function()
      assert.is_true(ngx.timer.at(1, cb, "fired", nil))
      assert.is_true(ngx.timer.at(60, cb, "first", 1))
      assert.is_true(ngx.timer.at(3600, cb, "second", 2))
      quench.sleep(2)
      assert.are.same({ { false, "fired", nil, false } }, got)
    end)
    assert.are.same({ { false, "fired", nil, false }, { true, "first", 1, true },
                      { nil, "process exiting" }, { true, "second", 2, true } }, got)
    assert.is_false(ngx.worker.exiting())
    -- the next run starts with no pending timers, and a timer that fires
    -- in time is not called again at exit
    got = {}
    quench.run({ clock = "virtual" }, function()
      ngx.timer.at(0, cb, "now")
      quench.sleep(0.1)
    end)
    assert.are.same({ { false, "now", nil, false } }, got)
  end)

  it("a premature callback that raises is logged, the others still run", function()
    local logged, got = {}, {}
    local sink = ngxq.log_sink
    ngxq.log_sink = function(level, msg) logged[#logged + 1] = { level, msg } end
    quench.run(function()
      ngx.timer.at(10, function() error("boom") end)
      ngx.timer.at(10, function(premature) got[#got + 1] = premature end)
    end)
    ngxq.log_sink = sink
    assert.are.same({ true }, got)
    assert.are.equal(1, #logged)
    assert.are.equal(ngx.ERR, logged[1][1])
    assert.truthy(logged[1][2]:find("boom", 1, true))
  end)
end)

describe("ngx.timer.at at exit", function()
  it("a premature callback may wait: ngx.sleep and cosocket I/O while the run ends", function()
    local got = {}
    quench.run(function()
      local server = assert(quench.tcp.listen("127.0.0.1", 0))
      local _, port = server:getsockname()
      quench.spawn(function()   -- the peer: still running when main is done
        local c <close> = server:accept()
        c:write("echo ", c:read("l"), "\n")
      end)
      assert.is_true(ngx.timer.at(3600, function(premature, greeting)
        ngx.sleep(0.01)
        local sock = connected(port)
        assert(sock:send(greeting .. "\n"))
        got[#got + 1] = { premature, sock:receive(), ngx.worker.exiting() }
        sock:close()
      end, "bye"))
    end)
    assert.are.same({ { true, "echo bye", true } }, got)
    assert.is_false(ngx.worker.exiting())
  end)

  it("a run on a manual clock that stalls in a premature callback leaves no 'exiting' behind",
     function()
    local ok = pcall(quench.run, { clock = "manual" }, function()
      ngx.timer.at(60, function() ngx.sleep(1) end)   -- nobody advances the clock
    end)
    assert.is_true(ok)
    assert.is_false(ngx.worker.exiting())
    quench.run(function() assert.is_true(ngx.timer.at(0, function() end)) end)
  end)

  it("a timer whose delay ends while the premature callbacks run is called once, prematurely",
     function()
    local calls = {}
    quench.run({ clock = "virtual" }, function()
      ngx.timer.at(0.5, function(premature) calls[#calls + 1] = premature end)
      ngx.timer.at(60, function() ngx.sleep(1) end)   -- keeps the run going past 0.5 s
    end)
    assert.are.same({ true }, calls)
  end)

  it("callbacks still running after the grace are aborted and logged; the grace is set by "
     .. "install", function()
    local logged, events = {}, {}
    local sink = ngxq.log_sink
    ngxq.log_sink = function(level, msg) logged[#logged + 1] = { level, msg } end
    ngxq.install({ timer_grace = 5 })
    local ok, err = pcall(quench.run, { clock = "virtual" }, function()
      ngx.timer.at(100, function()
        local t0 = quench.now()
        ngx.sleep(2)
        events[#events + 1] = { "short", quench.now() - t0 }
      end)
      ngx.timer.at(100, function()
        local t0 = quench.now()
        local _ <close> = setmetatable({}, { __close = function()
          events[#events + 1] = { "long dropped", quench.now() - t0 }
        end })
        ngx.sleep(1e6)
        events[#events + 1] = { "long finished" }
      end)
    end)
    ngxq.log_sink = sink
    ngxq.install({ timer_grace = 3 })   -- the default again
    assert(ok, err)
    assert.are.same({ { "short", 2 }, { "long dropped", 5 } }, events)
    assert.are.equal(1, #logged)
    assert.are.equal(ngx.ERR, logged[1][1])
    assert.truthy(logged[1][2]:find("1 premature timer(s) still running after 5 s", 1, true))
    assert.has_error(function() ngxq.install({ timer_grace = -1 }) end)
    assert.has_error(function() ngxq.install({ timer_grace = "x" }) end)
  end)
end)

describe("ngx.socket.tcp", function()
  it("receives lines, counts (numbers or numeric strings), everything, and any", T(function()
    local port = peer(function(c)
      c:write("one\r\ntwo\nthreeXYZ12345rest of it")
      c:shutdown()
      c:read("a")
    end)
    local sock = ngx.socket.tcp()
    sock:settimeout(2000)
    assert.are.equal(1, bounded(sock.connect, sock, "127.0.0.1", port))
    assert.are.equal("one", sock:receive())
    assert.are.equal("two", sock:receive("*l"))
    assert.are.equal("three", sock:receive(5))
    assert.are.equal("XYZ", sock:receive("3"))
    assert.are.equal("12", sock:receiveany(2))
    assert.are.equal("345rest of it", sock:receive("*a"))
    assert.are.same({ nil, "closed", "" }, { sock:receive(1) })
    assert.are.same({ nil, "closed" }, { sock:receive() })   -- closed after an error
  end))

  it("returns nil, 'closed', partial at EOF in a line or a count", T(function()
    local port = peer(function(c) c:write("abc"); c:shutdown(); c:read("a") end)
    local sock = ngx.socket.tcp()
    assert(sock:connect("127.0.0.1", port))
    assert.are.same({ nil, "closed", "abc" }, { sock:receive() })
    local port2 = peer(function(c) c:write("abc"); c:shutdown(); c:read("a") end)
    assert(sock:connect("127.0.0.1", port2))
    assert.are.same({ nil, "closed", "abc" }, { sock:receive(10) })
  end))

  it("a read timeout returns nil, 'timeout', partial and leaves the socket open", T(function()
    local go = quench.channel()
    local port = peer(function(c)
      c:write("par")
      go:recv()
      c:write("tial\n")
      c:read("a")
    end)
    local sock = ngx.socket.tcp()
    sock:settimeouts(1000, 1000, 50)
    assert(sock:connect("127.0.0.1", port))
    assert.are.same({ nil, "timeout", "par" }, { sock:receive() })
    go:send(true)
    assert.are.equal("tial", sock:receive())      -- still usable
    -- but a connection that timed out never goes back to the pool
    assert.are.same({ nil, "connection in dubious state" }, { sock:setkeepalive() })
    assert.are.same({ nil, "closed" }, { sock:receive() })
  end))

  -- The read timeout is the read's own deadline (lua/ngx.c): under the
  -- virtual clock it fires at exactly the timeout, in no real time. Pending
  -- I/O does not hold that clock back, so the bytes a step needs are made
  -- to arrive first by yielding (a runnable task stops the clock) until the
  -- socket's stream has buffered them.
  local function arrived(sock, n)
    for _ = 1, 100000 do
      if sock.s:buffered() >= n then return end
      quench.yield()
    end
    error("the peer's bytes never arrived")
  end

  it("a read timeout fires at the deadline under the virtual clock and leaves the socket "
     .. "as OpenResty does", quench.test(function()
    local go = quench.channel()
    local port, h = peer(function(c)
      c:write("first\npar")
      go:recv()
      c:write("tial\n12345")
      go:recv()
      c:read("a")
    end)
    local sock = ngx.socket.tcp()
    sock:settimeouts(1000, 1000, 7000)
    assert(sock:connect("127.0.0.1", port))
    arrived(sock, 9)
    assert.are.equal("first", sock:receive())
    local t0 = quench.now()
    assert.are.same({ nil, "timeout", "par" }, { sock:receive() })   -- a line, cut by the deadline
    assert.are.equal(7, quench.now() - t0)
    go:send(true)
    arrived(sock, 10)
    assert.are.equal("tial", sock:receive())   -- still open: what came next is read
    t0 = quench.now()
    assert.are.same({ nil, "timeout", "12345" }, { sock:receive(8) })   -- a count, likewise
    assert.are.equal(7, quench.now() - t0)
    -- nothing arrived at all: the deadline still ends the wait, partial ""
    sock:settimeout(2500)
    t0 = quench.now()
    assert.are.same({ nil, "timeout", "" }, { sock:receive() })
    assert.are.equal(2.5, quench.now() - t0)
    -- but a connection that timed out never goes back to the pool
    assert.are.same({ nil, "connection in dubious state" }, { sock:setkeepalive() })
    assert.are.same({ nil, "closed" }, { sock:receive() })
    go:send(true)
    h:join()
  end, { clock = "virtual" }))

  it("a fractional read timeout is kept to the nanosecond, and math.huge never times out "
     .. "(virtual clock)", quench.test(function()
    local go = quench.channel()
    local port, h = peer(function(c)
      go:recv()
      quench.sleep(1e7)                       -- far beyond any default timeout
      c:write("late\n")
      c:read("a")
    end)
    local sock = ngx.socket.tcp()
    sock:settimeouts(1000, 1000, 2.5)         -- 2.5 ms
    assert(sock:connect("127.0.0.1", port))
    local t0 = quench.now()
    assert.are.same({ nil, "timeout", "" }, { sock:receive() })
    assert.are.equal(0.0025, quench.now() - t0)
    sock:settimeout(math.huge)
    go:send(true)
    t0 = quench.now()
    assert.are.equal("late", sock:receive())
    assert.are.equal(1e7, quench.now() - t0)
    sock:close()
    h:join()
  end, { clock = "virtual" }))

  it("receive('*a'), receiveany and a receiveuntil reader time out at the deadline under the "
     .. "virtual clock", quench.test(function()
    local go = quench.channel()
    local server = assert(quench.tcp.listen("127.0.0.1", 0))
    local _, port = server:getsockname()
    local h = quench.spawn(function()
      local c <close> = server:accept()
      server:close()
      c:write("abc")
      go:recv()
      c:write("--x")
      go:recv()
      c:write("rest")
      c:shutdown()
      go:recv()
    end)
    local sock = ngx.socket.tcp()
    sock:settimeouts(1000, 1000, 3000)
    assert(sock:connect("127.0.0.1", port))
    arrived(sock, 3)
    local t0 = quench.now()
    assert.are.same({ nil, "timeout", "abc" }, { sock:receive("*a") })   -- what came, consumed
    assert.are.equal(3, quench.now() - t0)
    t0 = quench.now()
    assert.are.same({ nil, "timeout", "" }, { sock:receiveany(10) })
    assert.are.equal(3, quench.now() - t0)
    local reader = sock:receiveuntil("--")
    t0 = quench.now()
    assert.are.same({ nil, "timeout", "" }, { reader() })
    assert.are.equal(3, quench.now() - t0)
    go:send(true)
    arrived(sock, 3)
    assert.are.equal("", reader())        -- the boundary came at once: still usable
    assert.are.equal("x", sock:receiveany(10))
    go:send(true)
    assert.are.equal("rest", sock:receive("*a"))   -- to EOF: waited for, then the whole rest
    assert.are.same({ nil, "closed" }, { sock:receiveany(1) })
    go:send(true)
    h:join()
  end, { clock = "virtual" }))

  it("a receive dropped by an outer timeout under the virtual clock closes the socket at once",
     quench.test(function()
    local server = assert(quench.tcp.listen("127.0.0.1", 0))
    local _, port = server:getsockname()
    local h = quench.spawn(function()
      local c <close> = server:accept()
      server:close()
      c:read("a")   -- EOF once the client's socket is closed
      return true
    end)
    local sock = ngx.socket.tcp()
    sock:settimeout(60000)
    assert(sock:connect("127.0.0.1", port))
    assert.is_false((quench.timeout(1, sock.receive, sock, 4)))   -- dropped, not timed out
    assert.is_nil(sock.s)                      -- closed by the dropped wait's guard
    assert.is_true(h:join())                   -- the peer saw the connection end
    assert.are.same({ nil, "closed" }, { sock:receive() })
  end, { clock = "virtual" }))

  it("send takes strings, numbers and nested arrays, and returns the byte count", T(function()
    local got = quench.channel(1)
    local port = peer(function(c) got:send(c:read(12)) end)
    local sock = ngx.socket.tcp()
    assert(sock:connect("127.0.0.1", port))
    assert.are.equal(12, sock:send({ "ab", { "cd", 12, { true } }, "ef" }))
    assert.are.equal("abcd12trueef", bounded(got.recv, got))
    assert.has_error(function() sock:send({ print }) end,
                     "bad argument #2 to 'send' (bad data type function found in the array)")
  end))

  it("a socket in a <close> variable is closed at scope exit, and only then", T(function()
    local got = quench.channel(1)
    local port = peer(function(c)
      c:write("hello\n")
      got:send(c:read("a"))   -- EOF once the client closes
    end)
    local outer
    do
      local sock <close> = ngx.socket.tcp()
      outer = sock
      sock:settimeout(2000)
      assert(sock:connect("127.0.0.1", port))
      assert.are.equal(5, sock:send("ping\n"))
      assert.are.equal("hello", sock:receive())   -- waited: the guard did not close it
      assert.are.equal(5, sock:send("more\n"))
    end
    assert.are.equal("ping\nmore\n", bounded(got.recv, got))
    assert.are.same({ nil, "closed" }, { outer:receive() })
  end))

  it("send writes a flat array of strings and numbers as table.concat would", T(function()
    local want = table.concat({ "$", 3, "\r\n", -42, ":", 0, ":", math.mininteger, ":", 1.5,
                                ":", 2^63, ":", 1e300 })
    local got = quench.channel(1)
    local port = peer(function(c) got:send(c:read(#want)) end)
    local sock = ngx.socket.tcp()
    assert(sock:connect("127.0.0.1", port))
    assert.are.equal(#want, sock:send({ "$", 3, "\r\n", -42, ":", 0, ":", math.mininteger, ":",
                                        1.5, ":", 2^63, ":", 1e300 }))
    assert.are.equal(want, bounded(got.recv, got))
    assert.are.equal("$3\r\n-42:0:-9223372036854775808:1.5:", want:sub(1, 35))
  end))

  it("send builds a long array across its small-request buffer intact", T(function()
    -- the fast path builds a request of up to 512 bytes on the C stack and
    -- switches to a Lua buffer on the item that does not fit: that item an
    -- integer, a string or a float, at and around the boundary
    local cases = {}
    for _, pad in ipairs({ 508, 509, 510, 511, 512 }) do
      cases[#cases + 1] = { ("x"):rep(pad), 12345, "\r\n", ("y"):rep(700), 2.5, "end" }
      cases[#cases + 1] = { ("x"):rep(pad), "abcdef", -7, 0.25, ("z"):rep(3000), 42 }
      cases[#cases + 1] = { ("x"):rep(pad), 1.5, math.mininteger, "" }
    end
    local want = {}
    for i, t in ipairs(cases) do want[i] = table.concat(t) end
    local all = table.concat(want)
    local got = quench.channel(1)
    local port = peer(function(c) got:send(c:read(#all)) end)
    local sock = ngx.socket.tcp()
    assert(sock:connect("127.0.0.1", port))
    for i, t in ipairs(cases) do assert.are.equal(#want[i], sock:send(t)) end
    assert.are.equal(all, bounded(got.recv, got))
  end))

  it("receive takes lines and counts from the buffer and waits for the rest", T(function()
    local go = quench.channel()
    local port = peer(function(c)
      c:write("a\r\nb\n\r\n$5\r\nhel")
      go:recv()
      c:write("lo\r\nlast\r")
      go:recv()
      c:write("\n")
      c:read("a")
    end)
    local sock = connected(port)
    assert.are.equal("a", sock:receive())
    assert.are.equal("b", sock:receive("*l"))
    assert.are.equal("", sock:receive())
    assert.are.equal("$5", sock:receive())
    quench.spawn(function() quench.sleep(0.05); go:send(true) end)
    assert.are.equal("hello", sock:receive(5.9))   -- a count is floored
    assert.are.equal("\r\n", sock:receive("2"))
    quench.spawn(function() quench.sleep(0.05); go:send(true) end)
    assert.are.equal("last", sock:receive())       -- "\r" then "\n" later: one line
    assert.has_error(function() sock:receive(-1) end,
                     "bad argument #2 to 'receive' (bad pattern argument: -1)")
    assert.has_error(function() sock:receive("x") end,
                     "bad argument #2 to 'receive' (bad pattern argument: x)")
  end))

  it("while a receive waits, another task's send and receive say the socket is busy, "
     .. "and the socket is idle again after the reply", T(function()
    local go = quench.channel()
    local port = peer(function(c)
      go:recv()
      c:write("reply\r\n")
      assert.are.equal("next\r\n", c:read("L"))
      c:write("more\r\n")
      c:read("a")
    end)
    local sock = connected(port)
    local reader = quench.spawn(function() return sock:receive() end)
    quench.sleep(0.02)                              -- the reader is in its wait
    assert.are.same({ nil, "socket busy writing" }, { sock:send("next\r\n") })
    assert.are.same({ nil, "socket busy reading" }, { sock:receive() })
    assert.are.same({ nil, "socket busy writing" }, { sock:send({ "ne", "xt\r\n" }) })
    go:send(true)
    assert.are.same({ true, "reply" }, { bounded(reader.join, reader) })
    assert.are.equal(6, sock:send("next\r\n"))     -- idle again: both paths work
    assert.are.equal("more", sock:receive())
    sock:close()
  end))

  it("install provides LuaJIT's table.new and table.clear to drivers that require them", function()
    local new_tab = require "table.new"
    local t = new_tab(10, 2)
    assert.are.same({}, t)
    t[1], t.x = 1, 2
    local clear = require "table.clear"
    clear(t)
    assert.is_nil(next(t))
    assert.has_error(function() new_tab(-1, 0) end)
    assert.has_error(function() clear(1) end, "bad argument #1 to 'table.clear' (table expected, got number)")
  end)

  it("receiveuntil reads up to a boundary, with a size, inclusive or not", T(function()
    local port = peer(function(c)
      c:write("hello, world! -agentzh\r\n--abcedhb blah\r\n--abcedhbtail\n")
      c:read("a")
    end)
    local sock = ngx.socket.tcp()
    assert(sock:connect("127.0.0.1", port))
    local reader = sock:receiveuntil("\r\n--abcedhb")
    local chunks = {}
    while true do
      local data, err = reader(4)
      assert.is_nil(err)
      if not data then break end
      chunks[#chunks + 1] = data
    end
    assert.are.same({ "hell", "o, w", "orld", "! -a", "gent", "zh" }, chunks)
    local incl = sock:receiveuntil("\r\n--abcedhb", { inclusive = true })
    assert.are.equal(" blah\r\n--abcedhb", incl())
    assert.are.equal("tail", sock:receive())       -- bytes past the boundary come first
    assert.has_error(function() sock:receiveuntil("") end,
                     "bad argument #2 to 'receiveuntil' (pattern must be a non-empty string)")
  end))

  it("keeps idle connections: getreusedtimes grows, the pool option names the pool", T(function()
    local server = assert(quench.tcp.listen("127.0.0.1", 0))
    local _, port = server:getsockname()
    local accepted, handlers = 0, {}
    local h = quench.spawn(function()
      while true do
        local c = server:accept()
        if not c then return end
        accepted = accepted + 1
        handlers[#handlers + 1] = quench.spawn(function()
          for line in function() return c:read("l") end do c:write(line, "\n") end
          c:close()
        end)
      end
    end)
    for i = 0, 4 do
      local sock = ngx.socket.tcp()
      assert(sock:connect("127.0.0.1", port, { pool = "echo" }))
      assert.are.equal(i, sock:getreusedtimes())
      assert.are.equal(3, sock:send("hi\n"))
      assert.are.equal("hi", bounded(sock.receive, sock))
      assert.are.equal(1, sock:setkeepalive(10000, 5))
      assert.are.same({ nil, "closed" }, { sock:send("x") })   -- the object let it go
    end
    assert.are.equal(1, accepted)
    local other = ngx.socket.tcp()
    assert(other:connect("127.0.0.1", port))   -- another pool key: a new connection
    assert.are.equal(0, other:getreusedtimes())
    other:close()
    server:close()
    pool.clear()
    bounded(h.join, h)
    for _, hh in ipairs(handlers) do bounded(hh.join, hh) end   -- each ends at EOF
  end))

  it("connects to unix:/path, and pools it under that name", T(function()
    local path = os.tmpname()
    os.remove(path)
    local srv = assert(quench.unix.listen(path))
    local handlers = {}
    local h = quench.spawn(function()
      while true do
        local c = srv:accept()
        if not c then return end
        handlers[#handlers + 1] = quench.spawn(function()
          for line in function() return c:read("l") end do c:write(line, "!\n") end
          c:close()
        end)
      end
    end)
    for i = 0, 2 do
      local sock = ngx.socket.tcp()
      assert.are.equal(1, bounded(sock.connect, sock, "unix:" .. path))
      assert.are.equal(i, sock:getreusedtimes())
      sock:send("ping\n")
      assert.are.equal("ping!", bounded(sock.receive, sock))
      assert.are.equal(1, sock:setkeepalive())
    end
    assert.are.equal(1, pool.count("unix:" .. path))
    assert.are.equal(1, #handlers)
    srv:close()
    pool.clear()
    bounded(h.join, h)
    for _, hh in ipairs(handlers) do bounded(hh.join, hh) end
    local sock = ngx.socket.tcp()
    local ok, err = bounded(sock.connect, sock, "unix:" .. path)
    assert.is_nil(ok)
    assert.is_string(err)
  end))

  it("refuses to pool a connection with unread data", T(function()
    local port = peer(function(c) c:write("a\nb\n"); c:read("a") end)
    local sock = ngx.socket.tcp()
    assert(sock:connect("127.0.0.1", port))
    assert.are.equal("a", bounded(sock.receive, sock))
    bounded(quench.sleep, 0.05)
    assert.are.same({ nil, "connection in dubious state" }, { sock:setkeepalive() })
    assert.are.equal(0, pool.count())
  end))

  it("a wait cut short by an outer timeout leaves the connection unusable, never misread",
     T(function()
    local port = peer(function(c)
      c:read("l")
      quench.sleep(0.1)
      c:write("late answer\n")
      c:read("a")
    end)
    local sock = ngx.socket.tcp()
    assert(sock:connect("127.0.0.1", port))
    sock:send("q\n")
    assert.is_false((quench.timeout(0.02, sock.receive, sock)))   -- dropped mid-wait
    bounded(quench.sleep, 0.2)   -- the stale answer has arrived
    assert.are.same({ nil, "closed" }, { sock:receive() })
    assert.are.same({ nil, "closed" }, { sock:setkeepalive() })
  end))

  it("receive and send (C methods) blame the caller's line for misuse", T(function()
    local sock = ngx.socket.tcp()
    local function where(fn)
      local ok, err = pcall(fn)
      assert.is_false(ok)
      return tostring(err):match("^(spec/ngx_spec%.lua:%d+): ")
    end
    assert.is_truthy(where(function() return sock:receive({}) end))
    assert.is_truthy(where(function() return sock.receive({}) end))
    assert.is_truthy(where(function() return sock:send(print) end))
    assert.is_truthy(where(function() return sock:send({ { { print } } }) end))
    assert.is_truthy(where(function() return sock.send(42, "x") end))
  end))

  it("reports a closed port, and misuse raises naming the function", T(function()
    local port = servers.free_port()
    local sock = ngx.socket.tcp()
    assert.are.same({ nil, "connection refused" }, { bounded(sock.connect, sock, "127.0.0.1", port) })
    assert.are.same({ nil, "closed" }, { sock:receive() })
    assert.has_error(function() sock:connect(1) end,
                     "bad argument #1 to 'connect' (host string expected, got number)")
    assert.has_error(function() sock:receive("*x") end,
                     "bad argument #2 to 'receive' (bad pattern argument: *x)")
    assert.has_error(function() sock:settimeout(-1) end)
    assert.has_error(function() sock.receive({}) end)
  end))

  it("a connect that cannot finish in time returns 'timeout'", T(function()
    -- a listener that never accepts, with the smallest backlog: once its
    -- queue is full the kernel drops further SYNs, so a connect hangs
    assert(servers.have("python3"), "python3 is needed (scripts/deps.sh installs it)")
    local port = servers.free_port()
    local _stuck <close> = servers.start_command("python3", "-c \"import socket,time; "
      .. "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
      .. "s.bind(('127.0.0.1', " .. port .. ")); s.listen(0); time.sleep(60)\"", port)
    local held, full = {}, false
    for _ = 1, 16 do
      local ok, c = quench.timeout(0.3, quench.tcp.connect, "127.0.0.1", port)
      if not ok then full = true; break end
      held[#held + 1] = c
    end
    assert.is_true(full, "the listener's queue never filled")
    local sock = ngx.socket.tcp()
    sock:settimeouts(100, 1000, 1000)
    assert.are.same({ nil, "timeout" }, { bounded(sock.connect, sock, "127.0.0.1", port) })
    for _, c in ipairs(held) do if c then c:close() end end
  end))

  describe("connect's pool_size and backlog", function()
    -- a server accepting every connection, counting them
    local function many()
      local server = assert(quench.tcp.listen("127.0.0.1", 0))
      local _, port = server:getsockname()
      local accepted = { n = 0 }
      peers[#peers + 1] = quench.spawn(function()
        local sv <close> = server
        while true do
          local c = sv:accept()
          accepted.n = accepted.n + 1
          peers[#peers + 1] = quench.spawn(function() local cc <close> = c; cc:read("a") end)
        end
      end)
      return port, accepted
    end
    local opts = { pool = "limited", pool_size = 1, backlog = 1 }

    it("queues connects beyond pool_size, up to backlog, then refuses", T(function()
      local port, accepted = many()
      local a = ngx.socket.tcp()
      assert.are.equal(1, a:connect("127.0.0.1", port, opts))
      local b = ngx.socket.tcp()
      local bres
      local hb = quench.spawn(function() bres = { b:connect("127.0.0.1", port, opts) } end)
      quench.sleep(0.05)
      assert.is_nil(bres)                                   -- b waits in the queue
      local c = ngx.socket.tcp()
      assert.are.same({ nil, "too many waiting connect operations" },
                      { c:connect("127.0.0.1", port, opts) })
      assert.are.equal(1, a:setkeepalive())                 -- a's connection goes idle...
      bounded(hb.join, hb)
      assert.are.same({ 1 }, bres)
      assert.are.equal(1, b:getreusedtimes())               -- ...and b takes it
      assert.are.equal(1, accepted.n)
      b:close()                                             -- closed: a new one may be made
      assert.are.equal(1, bounded(c.connect, c, "127.0.0.1", port, opts))
      assert.are.equal(0, c:getreusedtimes())
      c:close()
    end))

    it("a closed connection lets the first waiter dial; the wait is bounded by the connect timeout",
       T(function()
      local port = many()
      local o = { pool = "limited2", pool_size = 1, backlog = 2 }
      local a = ngx.socket.tcp()
      assert(a:connect("127.0.0.1", port, o))
      local b = ngx.socket.tcp()
      b:settimeouts(100, 1000, 1000)
      local t0 = quench.now()
      assert.are.same({ nil, "timeout" }, { bounded(b.connect, b, "127.0.0.1", port, o) })
      assert.is_true(quench.now() - t0 >= 0.09)
      local c = ngx.socket.tcp()
      local h = quench.spawn(function() return c:connect("127.0.0.1", port, o) end)
      quench.sleep(0.05)
      a:close()
      assert.are.same({ true, 1 }, { bounded(h.join, h) })
      assert.are.equal(0, c:getreusedtimes())
      c:close()
    end))

    it("a queued connect that is dropped leaves the queue", T(function()
      local port = many()
      local o = { pool = "limited3", pool_size = 1, backlog = 1 }
      local a = ngx.socket.tcp()
      assert(a:connect("127.0.0.1", port, o))
      local b = ngx.socket.tcp()
      assert.is_false(quench.timeout(0.05, b.connect, b, "127.0.0.1", port, o))
      -- its place in the backlog is free again: c queues rather than fails
      local c = ngx.socket.tcp()
      local h = quench.spawn(function() return c:connect("127.0.0.1", port, o) end)
      quench.sleep(0.05)
      assert.is_false(h:done())
      a:close()
      assert.are.same({ true, 1 }, { bounded(h.join, h) })
      c:close()
      assert.has_error(function() a:connect("127.0.0.1", port, { backlog = -1 }) end,
        "bad argument #3 to 'connect' (opts.backlog must be an integer >= 0, got -1)")
      assert.has_error(function() a:connect("127.0.0.1", port, { backlog = 1, pool_size = 0 }) end,
        "bad argument #3 to 'connect' (opts.pool_size must be an integer >= 1, got 0)")
    end))
  end)

  it("ngx.socket.udp sends to a Unix datagram socket (setpeername 'unix:/path')", T(function()
    local path = os.tmpname()
    os.remove(path)
    local srv <close> = assert(quench.unix.dgram(path))
    local u = ngx.socket.udp()
    u:settimeout(2000)
    assert.are.equal(1, u:setpeername("unix:" .. path))
    assert.are.equal(1, u:send({ "log ", "line" }))
    assert.are.same({ "log line", "" }, { bounded(srv.recv, srv) })   -- from an unnamed socket
    u:settimeout(30)
    assert.are.same({ nil, "timeout" }, { bounded(u.receive, u) })   -- nobody can answer it
    assert.are.equal(1, u:close())
    assert.are.same({ nil, "closed" }, { u:send("x") })
    assert.are.same({ nil, "no such file or directory" },
                    { ngx.socket.udp():setpeername("unix:" .. path .. ".missing") })
  end))

  it("ngx.socket.udp talks to a peer and times out", T(function()
    local srv <close> = assert(quench.udp.bind("127.0.0.1", 0))
    local _, port = srv:getsockname()
    quench.spawn(function()
      local d, host, p = srv:recv()
      srv:send(d:upper(), host, p)
    end)
    local u = ngx.socket.udp()
    u:settimeout(2000)
    assert.are.equal(1, bounded(u.setpeername, u, "127.0.0.1", port))
    assert.are.equal(1, u:send("ping"))
    assert.are.equal("PING", bounded(u.receive, u))
    u:settimeout(30)
    assert.are.same({ nil, "timeout" }, { bounded(u.receive, u) })
    assert.are.equal(1, u:close())
  end))
end)

describe("resty.redis (lua-nginx-redis, unmodified) on quench.ngx", function()
  local redis = require "resty.redis"
  local srv

  setup(function() srv = servers.redis() end)
  teardown(function() if srv then srv:stop() end end)
  after_each(function() pool.clear() end)

  local function connect(timeout_ms)
    local r = redis:new()
    r:set_timeout(timeout_ms or 2000)
    local ok, err = r:connect("127.0.0.1", srv.port)
    assert(ok, err)
    return r
  end

  it("runs commands, nil replies are ngx.null", T(function()
    local r = connect()
    assert.are.equal("OK", r:set("k", "v"))
    assert.are.equal("v", r:get("k"))
    assert.are.equal(ngx.null, r:get("missing"))
    assert.are.equal(3, r:rpush("list", "a", "b", "c"))
    assert.are.same({ "a", "b", "c" }, r:lrange("list", 0, -1))
    r:del("list")
    r:close()
  end))

  it("pipelines commands", T(function()
    local r = connect()
    r:init_pipeline()
    r:set("p1", "x"); r:set("p2", 5); r:incr("p2"); r:get("p1"); r:get("p2")
    local res = assert(r:commit_pipeline())
    assert.are.same({ "OK", "OK", 6, "x", "6" }, res)
    r:set_keepalive()
  end))

  it("reuses kept-alive connections (getreusedtimes grows)", T(function()
    for i = 0, 5 do
      local r = connect()
      assert.are.equal(i, r:get_reused_times())
      assert.are.equal("PONG", r:ping())
      assert.are.equal(1, r:set_keepalive(10000, 10))
    end
  end))

  it("serves many concurrent tasks with correct answers", T(function()
    local tasks = {}
    for t = 1, 40 do
      tasks[t] = quench.spawn(function()
        for i = 1, 20 do
          local r = connect()
          local key = "c" .. t .. ":" .. i
          assert.are.equal("OK", r:set(key, key .. "!"))
          assert.are.equal(key .. "!", r:get(key))
          assert.are.equal(1, r:set_keepalive(10000, 20))
        end
        return true
      end)
    end
    for t = 1, #tasks do assert.is_true(bounded(tasks[t].join, tasks[t])) end
    assert.is_true(pool.count() <= 20)
    assert.is_true(pool.count() >= 1)
  end))

  it("a task aborted mid-command: its connection is closed, the next user gets a clean one",
     T(function()
    local r0 = connect()
    r0:del("q")
    assert.are.equal(1, r0:set_keepalive(10000, 1))   -- the pool's one connection
    local entered = quench.channel(1)
    local r = connect()
    assert.are.equal(1, r:get_reused_times())        -- took the pooled connection
    local h = quench.spawn(function()
      entered:send(true)
      return r:blpop("q", 0)                         -- blocks in redis
    end)
    bounded(entered.recv, entered)
    bounded(quench.sleep, 0.05)
    h:abort("give up")
    -- the drop closed the connection at once: nobody can pool it or use it
    assert.are.same({ nil, "closed" }, { r:set_keepalive(10000, 1) })
    assert.are.same({ nil, "closed" }, { r:get("k") })
    assert.are.equal(0, pool.count())
    local r2 = connect()
    assert.are.equal(0, r2:get_reused_times())       -- a new connection
    assert.are.equal(1, r2:rpush("q", "item"))
    bounded(quench.sleep, 0.05)
    assert.are.equal(1, r2:llen("q"))                -- nobody popped it behind our back
    assert.are.equal("OK", r2:set("after", "clean"))
    assert.are.equal("clean", r2:get("after"))
    r2:del("q")
    r2:set_keepalive()
  end))

  it("a command cut short by quench.timeout closes its connection at once", T(function()
    local r0 = connect()
    r0:del("q2")
    local ok = quench.timeout(0.05, function() return connect():blpop("q2", 0) end)
    assert.is_false(ok)
    -- the blocked client is gone from redis: the item stays queued
    assert.are.equal(1, r0:rpush("q2", "item"))
    bounded(quench.sleep, 0.05)
    assert.are.equal(1, r0:llen("q2"))
    r0:del("q2")
    r0:set_keepalive()
  end))

  it("a timeout: nil, 'timeout', and the connection never returns to the pool", T(function()
    local r = connect(50)
    local res, err = r:blpop("never", 5)
    assert.is_nil(res)
    assert.are.equal("timeout", err)
    local ok = r:set_keepalive()
    assert.is_nil(ok)
    assert.are.equal(0, pool.count())
  end))

  it("the server killed mid-way: errors, not hangs", T(function()
    for t, r in ipairs(kill_server_mid_way(servers.redis(), redis, 10)) do
      assert.is_true(r.oks >= 1 or t ~= 1)
      assert.are.equal(3, r.errors)
    end
  end))
end)

describe("resty.redis against a bad peer", function()
  local redis = require "resty.redis"

  local function against(script, timeout_ms)
    local port = peer(script)
    local r = redis:new()
    r:set_timeout(timeout_ms or 2000)
    assert(r:connect("127.0.0.1", port))
    return r
  end

  it("a server that sends garbage: an error", T(function()
    local r = against(function(c) c:read("l"); c:write("garbage\r\n"); c:read("a") end)
    local res, err = bounded(r.get, r, "k")
    assert.is_nil(res)
    assert.is_string(err)
  end))

  it("a half-sent reply: nil, 'closed'", T(function()
    local r = against(function(c) c:read("l"); c:write("$10\r\nhel"); c:close() end)
    local res, err = bounded(r.get, r, "k")
    assert.is_nil(res)
    assert.are.equal("closed", err)
  end))

  it("a peer that never answers: nil, 'timeout'", T(function()
    local r = against(function(c) c:read("a") end, 50)
    local res, err = bounded(r.get, r, "k")
    assert.is_nil(res)
    assert.are.equal("timeout", err)
  end))
end)

describe("resty.memcached (lua-nginx-memcached, unmodified) on quench.ngx", function()
  local memcached = require "resty.memcached"
  local srv

  setup(function() srv = servers.memcached() end)
  teardown(function() if srv then srv:stop() end end)
  after_each(function() pool.clear() end)

  local function connect()
    local m = memcached:new()
    m:set_timeout(2000)
    assert(m:connect("127.0.0.1", srv.port))
    return m
  end

  it("sets, gets (keys escaped), increments and misses", T(function()
    local m = connect()
    assert.is_truthy(m:set("a key/ü", "value", 0, 7))
    local v, flags = m:get("a key/ü")
    assert.are.equal("value", v)
    assert.are.equal("7", tostring(flags))
    assert.is_truthy(m:set("n", 10))
    assert.are.equal(15, tonumber((m:incr("n", 5))))
    local miss, f, err = m:get("nope")
    assert.is_nil(miss); assert.is_nil(f); assert.is_nil(err)
    m:set_keepalive()
  end))

  it("the server killed mid-way: errors, not hangs", T(function()
    for _, r in ipairs(kill_server_mid_way(servers.memcached(), memcached, 5)) do
      assert.are.equal(3, r.errors)
    end
  end))

  it("serves concurrent tasks over kept-alive connections", T(function()
    local tasks = {}
    for t = 1, 20 do
      tasks[t] = quench.spawn(function()
        local reused = 0
        for i = 1, 10 do
          local m = connect()
          reused = math.max(reused, m:get_reused_times())
          local key = "m" .. t .. "_" .. i
          assert.is_truthy(m:set(key, key))
          assert.are.equal(key, (m:get(key)))
          m:set_keepalive(10000, 10)
        end
        return reused
      end)
    end
    local max_reused = 0
    for t = 1, #tasks do
      local ok, reused = bounded(tasks[t].join, tasks[t])
      assert.is_true(ok)
      max_reused = math.max(max_reused, reused)
    end
    assert.is_true(max_reused >= 1)
  end))
end)

describe("sslhandshake on quench.tls", function()
  local tls_pki = require "helpers.tls_pki"
  local pki

  setup(function() pki = tls_pki.make() end)
  teardown(function()
    if pki then tls_pki.remove(pki) end
    ngxq.ssl_trusted_certificate = nil
  end)
  after_each(function() pool.clear() end)

  -- A quench TLS echo server of lines; returns its port and a stop function.
  local function tls_echo(name)
    local srv = assert(quench.tls.listen("127.0.0.1", 0,
      { certificate = pki[name].cert, key = pki[name].key }))
    local _, port = srv:getsockname()
    local tasks = {}
    local loop = quench.spawn(function()
      while true do
        local s = srv:accept()
        if not s then return end
        tasks[#tasks + 1] = quench.spawn(function()
          pcall(function() for line in s:lines("L") do s:write(line) end end)
          s:close()
        end)
      end
    end)
    return port, function()
      srv:close()
      loop:join()
      pool.clear()
      for _, t in ipairs(tasks) do bounded(t.join, t) end
    end
  end

  it("verifies the server, talks over TLS, and pooled connections stay secured", T(function()
    ngxq.install({ ssl_trusted_certificate = pki.ca.cert })
    local port, stop = tls_echo("server")
    local sock = ngx.socket.tcp()
    sock:settimeout(5000)
    assert(sock:connect("127.0.0.1", port))
    local sess = bounded(sock.sslhandshake, sock, nil, "localhost", true)
    assert.is_truthy(sess)
    assert.are.equal(6, sock:send("hello\n"))
    assert.are.equal("hello", bounded(sock.receive, sock))
    assert.are.equal(1, sock:setkeepalive())
    local again = ngx.socket.tcp()
    assert(again:connect("127.0.0.1", port))
    assert.are.equal(1, again:getreusedtimes())
    assert.is_true(again:sslhandshake(false, "localhost", true))   -- already secured: at once
    again:send("again\n")
    assert.are.equal("again", bounded(again.receive, again))
    again:close()
    stop()
  end))

  it("refuses a certificate for another name, and a self-signed one unless verify is off",
     T(function()
    ngxq.install({ ssl_trusted_certificate = pki.ca.cert })
    local port, stop = tls_echo("other")
    local sock = ngx.socket.tcp()
    assert(sock:connect("127.0.0.1", port))
    local ok, err = bounded(sock.sslhandshake, sock, false, "localhost", true)
    assert.is_nil(ok)
    assert.is_string(err)
    assert.are.same({ nil, "closed" }, { sock:receive() })          -- closed after the failure
    stop()
    local port2, stop2 = tls_echo("self")
    local s2 = ngx.socket.tcp()
    assert(s2:connect("127.0.0.1", port2))
    assert.is_nil((bounded(s2.sslhandshake, s2, false, "localhost", true)))
    local s3 = ngx.socket.tcp()
    assert(s3:connect("127.0.0.1", port2))
    assert.is_true(bounded(s3.sslhandshake, s3, false, "localhost", false))
    s3:send("x\n")
    assert.are.equal("x", bounded(s3.receive, s3))
    s3:close()
    stop2()
  end))
end)
