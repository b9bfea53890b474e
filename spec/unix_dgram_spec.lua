-- Unix datagram sockets (docs/io.md "Unix datagram sockets"): real
-- datagrams between sockets of this process, under a temporary directory;
-- real clock, every wait bounded by quench.timeout.
local quench = require "quench"

local function T(fn)
  return quench.test(fn, { clock = "real" })
end

local LIMIT = 5

local function bounded(fn, ...)
  local r = table.pack(quench.timeout(LIMIT, fn, ...))
  assert(r[1], "timed out")
  return table.unpack(r, 2, r.n)
end

local dir
setup(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("env -u LD_PRELOAD mkdir -m 700 " .. dir))
end)
teardown(function() os.execute("env -u LD_PRELOAD rm -rf " .. dir) end)

local function path(name) return dir .. "/" .. name end

local function exists(p)
  local f = io.open(p, "r")
  if f then f:close() return true end
  return os.execute("env -u LD_PRELOAD test -S " .. p) == true
end

describe("quench.unix.dgram", function()
  it("sends and receives datagrams with the sender's name; an unbound sender is ''", T(function()
    local a <close> = assert(quench.unix.dgram(path("a")))
    local b <close> = assert(quench.unix.dgram(path("b")))
    assert.are.equal(path("a"), a:getsockname())
    assert.is_true(b:send("hello", path("a")))
    assert.are.same({ "hello", path("b") }, { bounded(a.recv, a) })
    assert.is_true(a:send("", path("b")))              -- an empty datagram is one
    assert.are.same({ "", path("a") }, { bounded(b.recv, b) })
    local anon <close> = assert(quench.unix.dgram())
    assert.are.equal("", anon:getsockname())
    assert.is_true(anon:send("who", path("a")))
    assert.are.same({ "who", "" }, { bounded(a.recv, a) })
    -- datagram boundaries are kept, and recv(max) keeps the first max bytes
    b:send("12345", path("a"))
    b:send("67", path("a"))
    assert.are.equal("123", (bounded(a.recv, a, 3)))
    assert.are.equal("67", (bounded(a.recv, a)))
  end))

  it("abstract names (@name) have no file", T(function()
    local name = "@quench-spec-" .. tostring(os.time()) .. "-" .. tostring(math.random(1e9))
    local a <close> = assert(quench.unix.dgram(name))
    local b <close> = assert(quench.unix.dgram())
    assert.are.equal(name, a:getsockname())
    assert(b:bind(name .. "-b"))
    assert(b:send("x", name))
    assert.are.same({ "x", name .. "-b" }, { bounded(a.recv, a) })
    assert.are.same({ nil, "EADDRINUSE: address already in use", "EADDRINUSE" },
                    { quench.unix.dgram(name) })
  end))

  it("connect sets the default destination and filters senders; nil dissolves it", T(function()
    local a <close> = assert(quench.unix.dgram(path("ca")))
    local b <close> = assert(quench.unix.dgram(path("cb")))
    local other <close> = assert(quench.unix.dgram(path("cother")))
    local r = { b:send("no peer") }
    assert.is_nil(r[1])
    assert.is_truthy(r[3] == "ENOTCONN" or r[3] == "EDESTADDRREQ")
    assert(b:connect(path("ca")))
    assert.are.equal(path("ca"), b:getpeername())
    assert(b:send("to a"))
    assert.are.same({ "to a", path("cb") }, { bounded(a.recv, a) })
    assert(other:send("ignored", path("cb")) == nil or true)   -- refused: b hears only ca
    assert(a:send("from a", path("cb")))
    assert.are.equal("from a", (bounded(b.recv, b)))
    assert(b:connect())
    assert(other:send("heard", path("cb")))
    assert.are.equal("heard", (bounded(b.recv, b)))
  end))

  it("a stale socket file is replaced, a live one is EADDRINUSE, another file is kept",
     T(function()
    local p = path("stale")
    do
      local s = assert(quench.unix.dgram(p))
      s:close()
    end
    assert.is_false(exists(p))                          -- close removed its own file
    -- a stale file: a socket bound there by a process that died (here:
    -- bound by a Python helper that exits without removing it)
    assert(os.execute(("env -u LD_PRELOAD python3 -c \"import socket; s=socket.socket("
      .. "socket.AF_UNIX, socket.SOCK_DGRAM); s.bind('%s')\""):format(p)))
    assert.is_true(exists(p))
    local s <close> = assert(quench.unix.dgram(p))
    local c <close> = assert(quench.unix.dgram())
    assert(c:send("fresh", p))
    assert.are.equal("fresh", (bounded(s.recv, s)))
    assert.are.same({ nil, "EADDRINUSE: address already in use", "EADDRINUSE" },
                    { quench.unix.dgram(p) })          -- live: refused, and kept
    assert(c:send("still", p))
    assert.are.equal("still", (bounded(s.recv, s)))
    local f = assert(io.open(path("regular"), "w"))
    f:write("data")
    f:close()
    local r = { quench.unix.dgram(path("regular")) }
    assert.is_nil(r[1])
    assert.are.equal("EADDRINUSE", r[3])
    assert.are.equal("data", io.open(path("regular")):read("a"))   -- never removed
  end))

  it("a datagram to a name nobody is bound to fails; bad input raises naming the function",
     T(function()
    local s <close> = assert(quench.unix.dgram())
    local r = { s:send("x", path("nobody")) }
    assert.is_nil(r[1])
    assert.are.equal("ENOENT", r[3])
    assert.has_error(function() s:send("x", "") end)
    assert.has_error(function() s:send("x", "a\0b") end)
    assert.has_error(function() s:send("x", "@") end)
    assert.has_error(function() s:send("x", ("p"):rep(200)) end)
    assert.has_error(function() s:send({}, path("x")) end)
    assert.has_error(function() s:recv(0) end)
    assert.has_error(function() quench.unix.dgram({}) end)
    assert.has_error(function() quench.unix.dgram(nil, { recv_queue = 0 }) end)
    assert.has_error(function() quench.unix.dgram(nil, { bogus = 1 }) end)
    local ok, err = pcall(function() return s:send("x", "") end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("send", 1, true))
    s:close()
    ok, err = pcall(s.recv, s)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("quench.unix.dgram:recv: attempt to use a closed socket", 1,
                                     true))
  end))

  it("cancel safety: a datagram handed to a dropped recv goes back to the front", T(function()
    local a <close> = assert(quench.unix.dgram(path("ra")))
    local b <close> = assert(quench.unix.dgram(path("rb")))
    a:send("1", path("rb"))
    a:send("2", path("rb"))
    local i, d = quench.select_biased(b:recv_op(), b:recv_op())
    assert.are.same({ 1, "1" }, { i, d })
    assert.are.equal("2", (bounded(b.recv, b)))
    local second
    local first = quench.spawn(function()
      local v = b:recv()
      second:abort()
      return v
    end)
    second = quench.spawn(function() return b:recv() end)
    quench.yield()
    a:send("3", path("rb"))
    a:send("4", path("rb"))
    assert.are.same({ true, "3" }, { bounded(first.join, first) })
    assert.is_false((second:join()))
    assert.are.equal("4", (bounded(b.recv, b)))
    assert.is_false((quench.timeout(0.01, b.recv, b)))
  end))

  it("a send to a full receiver waits, and a dropped one has sent nothing", T(function()
    local a <close> = assert(quench.unix.dgram(path("fa"), { recv_queue = 1 }))
    local b <close> = assert(quench.unix.dgram(path("fb")))
    -- a does not read: fill the kernel's queue of a
    local n = 0
    while true do
      local op = b:send_op(("x"):rep(1000), path("fa"))
      local ok = quench.timeout(0.05, op.await, op)
      if not ok then break end                          -- it waited: a is full
      n = n + 1
      assert(n < 100000, "the receiver never filled")
    end
    -- the timed-out send was dropped before it was sent: a holds exactly n
    local waiting = quench.spawn(function() return b:send("last", path("fa")) end)
    quench.sleep(0.02)
    assert.is_false(waiting:done())                     -- waits while a is full
    for _ = 1, n do assert.are.equal(1000, #bounded(a.recv, a)) end
    assert.are.same({ true, true }, { bounded(waiting.join, waiting) })
    assert.are.equal("last", (bounded(a.recv, a)))
    assert.is_false((quench.timeout(0.05, a.recv, a)))  -- nothing more: none sent twice
  end))

  it("close wakes a waiting recv; a socket left open is closed at the run's end", function()
    local p = path("end")
    local kept
    quench.run(function()
      local s = assert(quench.unix.dgram(p))
      local h = quench.spawn(function() return s:recv() end)
      quench.yield()
      s:close()
      local ok, d, msg, code = h:join()
      assert.is_true(ok)
      assert.is_nil(d)
      assert.are.equal("ECANCELED", code)
      assert.is_truthy(msg)
      kept = assert(quench.unix.dgram(p))
    end)
    assert.is_true(kept:is_closed())
    assert.is_false(exists(p))
    assert.has_error(function() kept:recv() end)
    assert.has_error(function() quench.unix.dgram() end)   -- needs a running runtime
  end)
end)
