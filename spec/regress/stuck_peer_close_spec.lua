-- A stream closed with writes queued to a peer that reads nothing kept its
-- socket open (ESTABLISHED, its descriptor held) until the runtime ended:
-- close "lingered" until the queue was written, and it never was. A server
-- facing stuck clients ran out of descriptors. Now a lingering close gives
-- the peer `linger` seconds without progress, then resets the connection.
-- Real sockets, so the real clock; the bounds are generous.
local quench = require "quench"
local tcp, fs = quench.tcp, quench.fs

local function fd_count() return #assert(fs.readdir("/proc/self/fd")) end

-- Write to s until a write waits longer than `secs` (the peer reads nothing).
local function fill(s, secs)
  local chunk = ("x"):rep(256 * 1024)
  local n = 0
  while quench.timeout(secs, s.write, s, chunk) do
    n = n + 1
    assert(n < 4096, "writes never waited")
  end
  assert.is_true(s:queued() > 0)
end

-- Sleep until fd_count() <= want, at most `secs`: the count reached.
local function wait_fds(want, secs)
  local t0 = quench.now()
  while fd_count() > want and quench.now() - t0 < secs do quench.sleep(0.02) end
  return fd_count()
end

describe("a stream closed with writes queued to a peer that reads nothing", function()
  it("releases its descriptor within its linger bound, and the peer sees a reset", function()
    local t0 = os.time()
    quench.run({ clock = "real" }, function()
      local server <close> = assert(tcp.listen("127.0.0.1", 0, { linger = 0.3 }))
      local _, port = server:getsockname()
      local stuck <close> = assert(tcp.connect("127.0.0.1", port))   -- reads nothing yet
      local s = assert(server:accept())
      local base = fd_count()
      fill(s, 0.2)                                   -- the documented write timeout
      s:close()
      assert.are.equal(base - 1, wait_fds(base - 1, 5))   -- released: 0.3 s without progress
      -- the peer now reads what reached its kernel, then the reset (not a clean EOF)
      local got, err
      repeat got, err = stuck:read_some() until got == nil
      assert.are.equal("ECONNRESET: connection reset by peer", err)
    end)
    assert.is_true(os.time() - t0 < 30)              -- quench.run was not held
  end)

  it("is released too when a shutdown was pending (it timed out) at the close", function()
    quench.run({ clock = "real" }, function()
      local server <close> = assert(tcp.listen("127.0.0.1", 0, { linger = 0.3 }))
      local _, port = server:getsockname()
      local stuck <close> = assert(tcp.connect("127.0.0.1", port))
      local s = assert(server:accept())
      local base = fd_count()
      fill(s, 0.2)
      assert.is_false((quench.timeout(0.2, s.shutdown, s)))   -- waits for the queue: never
      s:close()
      assert.are.equal(base - 1, wait_fds(base - 1, 5))
      local _ = stuck
    end)
  end)

  it("is released by handler tasks with <close> and a timeout per write", function()
      quench.run({ clock = "real" }, function()
        local server <close> = assert(tcp.listen("127.0.0.1", 0))
        local _, port = server:getsockname()
        local clients = {}
        for i = 1, 4 do clients[i] = assert(tcp.connect("127.0.0.1", port)) end
        local handlers, accepted = {}, {}
        for i = 1, 4 do accepted[i] = assert(server:accept()) end
        local base = fd_count()
        for i = 1, 4 do
          local s = accepted[i]
          handlers[i] = quench.spawn(function()
            local conn <close> = s
            assert.is_true(conn:linger(0.2))
            fill(conn, 0.1)
          end)
        end
        for _, h in ipairs(handlers) do assert(h:join()) end
        assert.are.equal(base - 4, wait_fds(base - 4, 5))
        for _, c in ipairs(clients) do c:close() end
    end)
  end)

  it("lingers while the peer keeps taking data: a slow reader gets everything", function()
    quench.run({ clock = "real" }, function()
      local server <close> = assert(tcp.listen("127.0.0.1", 0, { linger = 0.3 }))
      local _, port = server:getsockname()
      local c <close> = assert(tcp.connect("127.0.0.1", port, { read_limit = 16 * 1024 }))
      local s = assert(server:accept())
      local total = 8 << 20
      s:write(("y"):rep(total))                      -- queued: more than the kernel takes
      assert.is_true(s:queued() > 0)
      s:close()
      local got, next_pause = 0, 0
      local t0 = quench.now()
      for data in function() return c:read_some() end do
        got = got + #data
        if got >= next_pause then                    -- slow, but never still for 0.3 s
          quench.sleep(0.01)
          next_pause = got + 64 * 1024
        end
      end
      assert.are.equal(total, got)
      assert.is_true(quench.now() - t0 > 0.6)        -- longer than the bound, yet no reset
    end)
  end)

  it("drops the queue at once with linger 0 (a reset)", function()
    quench.run({ clock = "real" }, function()
      local server <close> = assert(tcp.listen("127.0.0.1", 0))
      local _, port = server:getsockname()
      local c <close> = assert(tcp.connect("127.0.0.1", port, { linger = 0 }))
      local s <close> = assert(server:accept())
      local base = fd_count()
      local _ = s
      c:write(("z"):rep(8 << 20))
      assert.is_true(c:queued() > 0)
      c:close()
      assert.are.equal(base - 1, fd_count())         -- released at once
    end)
  end)

  it("rejects a bad linger, naming the function", function()
    quench.run(function()
      assert.has_error(function() tcp.listen("127.0.0.1", 0, { linger = -1 }) end,
        "quench.tcp.listen: opts.linger must be a number of seconds in 0..86400")
      assert.has_error(function() tcp.connect("127.0.0.1", 1, { linger = 0 / 0 }) end,
        "quench.tcp.connect: opts.linger must be a number of seconds in 0..86400")
      local server <close> = assert(tcp.listen("127.0.0.1", 0))
      local _, port = server:getsockname()
      local c <close> = assert(tcp.connect("127.0.0.1", port))
      assert.has_error(function() c:linger("x") end,
        "quench.tcp.stream:linger: seconds must be a number in 0..86400, got string")
      assert.has_error(function() c:linger(math.huge) end,
        "quench.tcp.stream:linger: seconds must be a number in 0..86400, got inf")
    end)
  end)
end)
