-- quench.pool (docs/io.md, "Connection pool"): idle connections keyed by
-- destination, bounded, with an idle timeout (virtual clock), and never a
-- connection in a dubious state handed out. Loopback streams only.
local quench = require "quench"
local pool = require "quench.pool"

local V = function(fn) return quench.test(fn) end                    -- virtual clock
local R = function(fn) return quench.test(fn, { clock = "real" }) end

-- n connected streams to one listener; returns the client ends, the server
-- ends and the listener (closed by the caller).
local function streams(n)
  local server = assert(quench.tcp.listen("127.0.0.1", 0))
  local _, port = server:getsockname()
  local clients, accepted = {}, {}
  for i = 1, n do
    clients[i] = assert(quench.tcp.connect("127.0.0.1", port))
    accepted[i] = assert(server:accept())
  end
  return clients, accepted, server
end

local function is_closed(s) return tostring(s):find("closed", 1, true) ~= nil end

local function close_all(...)
  for _, list in ipairs({ ... }) do
    if type(list) == "table" then
      for _, s in ipairs(list) do s:close() end
    else
      list:close()
    end
  end
end

describe("quench.pool", function()
  after_each(function() pool.clear() end)

  it("builds keys from host and port, a Unix path, and TLS parameters in a fixed order", function()
    assert.are.equal("127.0.0.1:6379", pool.key("127.0.0.1", 6379))
    assert.are.equal("unix:/run/redis.sock", pool.key("unix:/run/redis.sock"))
    assert.are.equal("h:443|tls|server_name=example.org|verify=true",
                     pool.key("h", 443, { verify = true, server_name = "example.org" }))
    assert.are.equal(pool.key("h", 1, { a = 1, b = 2 }), pool.key("h", 1, { b = 2, a = 1 }))
    assert.has_error(function() pool.key(nil, 1) end,
                     "quench.pool.key: bad argument #1 (host or unix:path string expected, got nil)")
  end)

  it("hands back the most recently idle connection, counting its reuses", V(function()
    local c, a, srv = streams(2)
    assert.is_nil(pool.take("k"))
    assert.is_true(pool.give("k", c[1]))
    assert.is_true(pool.give("k", c[2]))
    assert.are.equal(2, pool.count("k"))
    local s, reused = pool.take("k")
    assert.are.equal(c[2], s)
    assert.are.equal(1, reused)
    assert.is_true(pool.give("k", s, { reused = reused, data = { tls = "x" } }))
    local s2, reused2, data = pool.take("k")
    assert.are.equal(c[2], s2)
    assert.are.equal(2, reused2)
    assert.are.same({ tls = "x" }, data)
    assert.is_nil(pool.take("other"))
    close_all(c, a, srv)
  end))

  it("closes a connection idle longer than its idle timeout", V(function()
    local c, a, srv = streams(2)
    assert.is_true(pool.give("k", c[1], { idle = 5 }))
    quench.sleep(4.9)
    assert.are.equal(1, pool.count("k"))
    quench.sleep(0.2)
    assert.are.equal(0, pool.count("k"))
    assert.is_nil(pool.take("k"))
    assert.is_true(is_closed(c[1]))
    -- idle = 0: no limit
    assert.is_true(pool.give("k", c[2], { idle = 0 }))
    quench.sleep(1e6)
    assert.are.equal(c[2], pool.take("k"))
    close_all(c, a, srv)
  end))

  it("expired connections of keys nobody asks for are closed by later use of the pool",
     V(function()
    local c, a, srv = streams(2)
    assert.is_true(pool.give("idle-key", c[1], { idle = 1 }))
    quench.sleep(2)
    assert.is_true(pool.give("busy-key", c[2]))
    assert.is_true(is_closed(c[1]))
    close_all(c, a, srv)
  end))

  it("keeps at most `size` idle connections a key: the oldest goes", V(function()
    local c, a, srv = streams(3)
    for i = 1, 3 do assert.is_true(pool.give("k", c[i], { size = 2 })) end
    assert.are.equal(2, pool.count("k"))
    assert.is_true(is_closed(c[1]))
    assert.is_false(is_closed(c[2]))
    close_all(c, a, srv)
  end))

  it("refuses, and closes, a connection with unread data or marked dubious", R(function()
    local c, a, srv = streams(2)
    a[1]:write("unasked")
    for _ = 1, 500 do
      if c[1]:buffered() > 0 then break end
      quench.sleep(0.002)
    end
    assert.are.same({ nil, "unread data in buffer" }, { pool.give("k", c[1]) })
    assert.is_true(is_closed(c[1]))
    assert.are.same({ nil, "aborted" }, { pool.give("k", c[2], { dubious = "aborted" }) })
    assert.is_true(is_closed(c[2]))
    assert.are.equal(0, pool.count())
    close_all(c, a, srv)
  end))

  it("never hands out a connection the peer closed or wrote to while it was idle", R(function()
    local c, a, srv = streams(2)
    assert.is_true(pool.give("k", c[1]))
    assert.is_true(pool.give("k", c[2]))
    a[1]:close()                    -- the older one: EOF
    a[2]:write("stray reply")       -- the newer one: bytes nobody asked for
    quench.sleep(0.05)
    assert.is_nil(pool.take("k"))
    assert.is_true(is_closed(c[1]))
    assert.is_true(is_closed(c[2]))
    close_all(c, a, srv)
  end))

  it("connections of an ended runtime are never handed out in the next one", function()
    quench.run(function()
      local c = streams(1)
      assert.is_true(pool.give("k", c[1]))
    end)
    quench.run(function() assert.is_nil(pool.take("k")) end)
  end)

  it("misuse raises naming the function", V(function()
    local c, a, srv = streams(1)
    assert.has_error(function() pool.give(1, c[1]) end,
                     "quench.pool.give: bad argument #1 (key string expected, got number)")
    assert.has_error(function() pool.give("k", c[1], { idle = -1 }) end,
                     "quench.pool.give: opts.idle must be a number of seconds >= 0")
    close_all(c, a, srv)
  end))
end)
