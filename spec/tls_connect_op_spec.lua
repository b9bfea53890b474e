-- quench.tls.connect_op (issue 16): the op form of quench.tls.connect, on
-- the real clock over loopback with certificates made at test time. It
-- connects and verifies when awaited; dropped during its handshake (a lost
-- select, an expired timeout) the half-made TLS connection is closed: the
-- silent plain-TCP server sees the ClientHello and then EOF. The same for
-- tcp_stream:starttls, the other TLS start (one future each:
-- core/tls_start.c): dropped mid-handshake or failed, the stream is closed.
local quench = require "quench"
local tls_pki = require "helpers.tls_pki"
local tls, tcp = quench.tls, quench.tcp

local pki

setup(function() pki = tls_pki.make() end)
teardown(function() tls_pki.remove(pki) end)

local function T(fn) return quench.test(fn, { clock = "real" }) end

-- A plain TCP server that accepts one connection, never answers, and
-- returns (from its task) everything it read until EOF.
local function silent_server()
  local srv = assert(tcp.listen("127.0.0.1", 0))
  local _, port = srv:getsockname()
  local t = quench.spawn(function()
    local s = assert(srv:accept())
    local got = {}
    while true do
      local d = s:read_some(4096)
      if not d then break end
      got[#got + 1] = d
    end
    s:close()
    srv:close()
    return table.concat(got)
  end)
  return port, t
end

-- A TLS server with a self-signed certificate (one the test CA does not
-- vouch for) that accepts one connection and reads it to the end.
local function self_signed_server()
  local srv = assert(tls.listen("127.0.0.1", 0, { certificate = pki.self.cert,
                                                  key = pki.self.key }))
  local _, port = srv:getsockname()
  local t = quench.spawn(function()
    local s = assert(srv:accept())
    s:read("a")
    s:close()
    srv:close()
  end)
  return port, t
end

describe("quench.tls.connect_op", function()
  it("connects and verifies when awaited", T(function()
    local srv = assert(tls.listen("127.0.0.1", 0, { certificate = pki.server.cert,
                                                    key = pki.server.key }))
    local _, port = srv:getsockname()
    local server = quench.spawn(function()
      local s = assert(srv:accept())
      local line = s:read("L")
      if line then s:write(line) end
      s:close()
    end)
    local op = tls.connect_op("localhost", port, { cafile = pki.ca.cert })
    local c = assert(op:await())
    assert(c:write("ping\n"))
    assert.are.equal("ping", c:read("l"))
    assert.are.equal("CN=localhost", c:peer_certificate().subject)
    c:close()
    server:join()
    srv:close()
  end))

  it("returns a verification failure as values", T(function()
    local port, server = self_signed_server()
    local c, err, code = tls.connect_op("localhost", port, { cafile = pki.ca.cert }):await()
    assert.is_nil(c)
    assert.are.equal("ETLS_SELF_SIGNED", code)
    assert.matches("certificate verify failed", err)
    server:join()
  end))

  it("closes the half-made connection when it loses a select", T(function()
    local port, server = silent_server()
    local i = quench.select(tls.connect_op("127.0.0.1", port, { verify = false }),
                            quench.sleep_op(0.05))
    assert.are.equal(2, i)
    local ok, got = server:join()                 -- ends: the client's side was closed
    assert.is_true(ok)
    assert.are.equal("\22\3", got:sub(1, 2))      -- a TLS handshake record: the ClientHello
  end))

  it("closes the half-made connection when its timeout expires", T(function()
    local port, server = silent_server()
    local done, res = quench.timeout(0.05, tls.connect_op("127.0.0.1", port, { verify = false }))
    assert.is_false(done)
    assert.is_true(quench.is_timeout(res))
    local ok, got = server:join()
    assert.is_true(ok)
    assert.are.equal("\22\3", got:sub(1, 2))
  end))

  it("returns a context that cannot be made as values when awaited", T(function()
    local op = tls.connect_op("localhost", 1, { cafile = "/nonexistent/ca.pem" })
    local c, err, code = op:await()
    assert.is_nil(c)
    assert.are.equal("ETLS_CONFIG", code)
    assert.matches("/nonexistent/ca.pem", err, 1, true)
  end))

  it("raises on bad arguments, naming the function", T(function()
    assert.has_error(function() tls.connect_op(nil, 443) end,
      "bad argument #1 to 'quench.tls.connect_op' (string expected, got nil)")
    assert.has_error(function() tls.connect_op("localhost", 70000) end,
      "bad argument #2 to 'quench.tls.connect_op' (port must be an integer in 0..65535, got 70000)")
    assert.has_error(function() tls.connect_op("localhost", 443, "verify") end,
      "bad argument #3 to 'quench.tls.connect_op' (table expected, got string)")
    -- a bad option raises when awaited, as connect's would
    assert.has_error(function() tls.connect_op("localhost", 443, { bogus = 1 }):await() end,
      "quench.tls.connect: unknown option 'bogus'")
  end))
end)

describe("tcp_stream:starttls", function()
  it("closes the stream when dropped mid-handshake", T(function()
    local port, server = silent_server()
    local c = assert(tcp.connect("127.0.0.1", port))
    local done = quench.timeout(0.05, function()
      return c:starttls({ verify = false })
    end)
    assert.is_false(done)
    assert.are.equal("quench.tls.stream", getmetatable(c).__name)   -- attached, then closed
    assert.has_error(function() c:write("x") end,
      "quench.tls.stream:write: attempt to use a closed stream")
    local ok, got = server:join()
    assert.is_true(ok)
    assert.are.equal("\22\3", got:sub(1, 2))
  end))

  it("returns a failed handshake as values and closes the stream", T(function()
    local port, server = self_signed_server()
    local c = assert(tcp.connect("127.0.0.1", port))
    local r, err, code = c:starttls({ servername = "localhost", cafile = pki.ca.cert })
    assert.is_nil(r)
    assert.are.equal("ETLS_SELF_SIGNED", code)
    assert.matches("certificate verify failed", err)
    assert.has_error(function() c:read(1) end, "quench.tls.stream:read: attempt to use a closed stream")
    server:join()
  end))

  it("raises when a read is waiting on the stream", T(function()
    local port, server = silent_server()
    local c = assert(tcp.connect("127.0.0.1", port))
    local reader = quench.spawn(function() return c:read(1) end)
    quench.yield()
    assert.has_error(function() c:starttls({ verify = false }) end,
      "quench.tcp.stream:starttls: a read or write is waiting on this stream")
    reader:abort()
    c:close()
    server:join()
  end))
end)
