-- TLS streams have the TCP stream's readiness and non-waiting methods
-- (peek, readable, writable, try_read, try_write), on the decrypted bytes:
-- a peek leaves them buffered, a try_write is encrypted like a write.
local quench = require "quench"
local tls_pki = require "helpers.tls_pki"

local pki
setup(function() pki = tls_pki.make() end)
teardown(function() tls_pki.remove(pki) end)

describe("TLS readiness and non-waiting I/O", function()
  it("peek, readable, try_read and try_write work on the plaintext", function()
    quench.run(function()
      local srv = assert(quench.tls.listen("127.0.0.1", 0,
        { certificate = pki.server.cert, key = pki.server.key }))
      local _, port = srv:getsockname()
      local server = quench.spawn(function()
        local s <close> = assert(srv:accept())
        assert(s:handshake())
        assert(s:readable())                        -- waits for decrypted bytes
        assert.equal("hello", s:peek())              -- left buffered
        assert.equal("hello", s:read(5))
        local data, msg, code = s:try_read()         -- nothing more yet
        assert.is_nil(data)
        assert.equal("EAGAIN", code, msg)
        assert(s:writable())
        assert(s:try_write("world"))                 -- encrypted, like write
        assert.equal("bye", s:read(3))
      end)
      local c <close> = assert(quench.tls.connect("localhost", port, { cafile = pki.ca.cert }))
      assert(c:write("hello"))
      assert.equal("world", c:read(5))               -- the client decrypts it: it was a record
      assert(c:write("bye"))
      local in_time, ok, err = quench.timeout(10, server.join, server)
      assert(in_time and ok, tostring(err))
      srv:close()
    end)
  end)
end)
