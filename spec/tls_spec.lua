-- TLS (issue 16): quench.tls over loopback on the real clock, with
-- certificates made at test time by the `openssl` command
-- (spec/helpers/tls_pki.lua), against quench itself and against real
-- peers: `openssl s_server` (quench as client), `openssl s_client` and
-- `curl` (quench as server), each started here on a free loopback port and
-- stopped by PID. Tasks synchronize with joins and the data itself; a
-- timeout is only ever the thing tested.
local quench = require "quench"
local tls_pki = require "helpers.tls_pki"
local tls, tcp = quench.tls, quench.tcp

local pki

setup(function()
  tls_pki.require_tools("openssl", "curl")
  pki = tls_pki.make()
end)

teardown(function() tls_pki.remove(pki) end)

local function server_opts(name, extra)
  local o = { certificate = pki[name].cert, key = pki[name].key }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- A quench TLS server on 127.0.0.1:0 whose connections run `serve` in
-- tasks of their own; returns the server, its port, a function that stops
-- it (closes it, waits for every connection's task) and the results of
-- `pcall(serve, stream)` so far.
local function serve_with(opts, serve)
  local srv = assert(tls.listen("127.0.0.1", 0, opts))
  local _, port = srv:getsockname()
  local results, tasks = {}, {}
  local loop = quench.spawn(function()
    while true do
      local s = srv:accept()
      if not s then return end
      tasks[#tasks + 1] = quench.spawn(function()
        local r = table.pack(pcall(serve, s))
        results[#results + 1] = r
        s:close()
      end)
    end
  end)
  local function stop()
    srv:close()
    loop:join()
    for _, t in ipairs(tasks) do t:join() end
  end
  return srv, port, stop, results
end

-- An echo of lines, until EOF.
local function echo_lines(s)
  for line in s:lines("L") do assert(s:write(line)) end
end

-- A deterministic generator (the same on every run).
local function rng_for(seed)
  local x = seed
  return function(a, b)
    x = (x * 1103515245 + 12345) % 2147483648
    if b == nil then a, b = 1, a end
    return a + x % (b - a + 1)
  end
end

-- The bytes of the large transfers: PATTERN repeated (a prime length, so
-- chunks never align with it).
local PATTERN
do
  local rng, t = rng_for(7), {}
  for i = 1, 65521 do t[i] = string.char(rng(0, 255)) end
  PATTERN = table.concat(t)
end
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

local function T(fn) return quench.test(fn, { clock = "real" }) end

describe("quench.tls", function()
  it("connects, echoes, and reports version, cipher, ALPN, SNI and the peer's certificate", T(function()
    local seen = {}
    local _, port, stop = serve_with(server_opts("server", { alpn = { "h2", "http/1.1" } }),
      function(s)
        assert(s:handshake())
        seen.alpn, seen.sni = s:alpn(), s:servername()
        echo_lines(s)
      end)
    local c = assert(tls.connect("localhost", port, { cafile = pki.ca.cert,
                                                    alpn = { "x-other", "http/1.1" } }))
    assert.are.equal("TLSv1.3", c:tls_version())
    assert.is_string(c:cipher())
    assert.are.equal("http/1.1", c:alpn())
    assert(c:write("hello\n", "world\n"))
    assert.are.equal("hello", c:read("l"))
    assert.are.equal("world\n", c:read("L"))
    assert.are.equal("http/1.1", seen.alpn)
    assert.are.equal("localhost", seen.sni)
    local cert = c:peer_certificate()
    assert.are.equal("CN=localhost", cert.subject)
    assert.are.equal("CN=quench test CA", cert.issuer)
    assert.are.same({ "DNS:localhost", "IP:127.0.0.1" }, cert.alt_names)
    assert.is_true(cert.not_before <= os.time() and os.time() < cert.not_after)
    local p = io.popen("openssl x509 -noout -fingerprint -sha256 -serial -in " .. pki.server.cert)
    local out = p:read("a")
    p:close()
    assert.are.equal(out:match("Fingerprint=(%S+)"), cert.sha256)
    assert.are.equal(out:match("serial=(%x+)"), cert.serial)
    assert.are.equal(tls_pki.read(pki.server.cert), cert.pem)
    c:close()
    stop()
  end))

  it("verifies an IP address against the certificate's IP entries", T(function()
    local _, port, stop = serve_with(server_opts("server"), echo_lines)
    local c = assert(tls.connect("127.0.0.1", port, { cafile = pki.ca.cert }))
    assert(c:write("x\n"))
    assert.are.equal("x", c:read())
    c:close()
    stop()
  end))

  describe("refuses, with OpenSSL's reason and a code,", function()
    local cases = {
      { "a certificate for another name", "other", { cafile = true }, "ETLS_HOSTNAME",
        "hostname mismatch" },
      { "an expired certificate", "expired", { cafile = true }, "ETLS_EXPIRED",
        "certificate has expired" },
      { "a self-signed certificate", "self", { cafile = true }, "ETLS_SELF_SIGNED",
        "self%-signed certificate" },
      { "a certificate from an unknown CA", "server", { cafile = "rogue" }, "ETLS_UNKNOWN_CA",
        "unable to get local issuer certificate" },
      { "by default a test CA the system store does not know", "server", {}, "ETLS_UNKNOWN_CA",
        "unable to get local issuer certificate" },
    }
    for _, case in ipairs(cases) do
      local what, cert, copts, code, reason = table.unpack(case)
      it(what, T(function()
        local _, port, stop, results = serve_with(server_opts(cert), function(s)
          return s:handshake()
        end)
        local o = {}
        if copts.cafile == true then o.cafile = pki.ca.cert
        elseif copts.cafile then o.cafile = pki[copts.cafile].cert end
        local c, msg, got = tls.connect("localhost", port, o)
        assert.is_nil(c)
        assert.are.equal(code, got)
        assert.matches("^" .. code .. ": certificate verify failed: " .. reason, msg)
        -- accepted when verification is turned off, explicitly
        local c2 = assert(tls.connect("localhost", port, { verify = false }))
        assert(c2:handshake())
        c2:close()
        stop()
        local server_side = results[1].n >= 3 and results[1] or results[2]
        assert.is_nil(server_side[2])        -- the server saw the client's alert
      end))
    end

    it("a peer speaking plain TCP (client side)", T(function()
      local srv = assert(tcp.listen("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local t = quench.spawn(function()
        local s <close> = assert(srv:accept())
        s:read_some()
        s:write("HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        s:read("a")
      end)
      local c, msg, code = tls.connect("127.0.0.1", port, { verify = false })
      assert.is_nil(c)
      assert.are.equal("ETLS_NOT_TLS", code)
      assert.matches("the peer does not speak TLS: wrong version number", msg, 1, true)
      t:join()
      srv:close()
    end))

    it("a client sending garbage (server side); and one closing mid-handshake", T(function()
      local _, port, stop, results = serve_with(server_opts("server"), function(s)
        return s:handshake()
      end)
      local c <close> = assert(tcp.connect("127.0.0.1", port))
      assert(c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
      c:read("a")                              -- the server closes
      local c2 = assert(tcp.connect("127.0.0.1", port))
      c2:close()
      while #results < 2 do quench.sleep(0.01) end
      local codes = {}
      for _, r in ipairs(results) do codes[#codes + 1] = r[4] end
      table.sort(codes)
      assert.are.same({ "ETLS_HANDSHAKE", "ETLS_NOT_TLS" }, codes)
      stop()
    end))

    it("no protocol version in common", T(function()
      local _, port, stop = serve_with(server_opts("server", { max_version = "TLSv1.2" }),
        function(s) return s:handshake() end)
      local c, msg, code = tls.connect("localhost", port, { cafile = pki.ca.cert,
                                                            min_version = "TLSv1.3" })
      assert.is_nil(c)
      assert.are.equal("ETLS_VERSION", code)
      assert.matches("no TLS version in common", msg, 1, true)
      -- TLS 1.2 is accepted (the default minimum)
      local c2 = assert(tls.connect("localhost", port, { cafile = pki.ca.cert }))
      assert.are.equal("TLSv1.2", c2:tls_version())
      c2:close()
      stop()
    end))
  end)

  describe("client certificates (verify = \"peer\" on the server)", function()
    local function run_case(client_name)
      local subject
      local _, port, stop, results = serve_with(server_opts("server", {
        verify = "peer", cafile = pki.ca.cert }), function(s)
          assert(s:handshake())
          subject = s:peer_certificate().subject
          echo_lines(s)
        end)
      local o = { cafile = pki.ca.cert }
      if client_name then o.certificate, o.key = pki[client_name].cert, pki[client_name].key end
      local c, msg, code = tls.connect("localhost", port, o)
      local line
      if c then                                -- TLS 1.3: the client learns it at its first read
        c:write("hi\n")
        line, msg, code = c:read()
        c:close()
      end
      stop()
      while #results < 1 do quench.sleep(0.01) end
      return line, subject, msg, code, results[1]
    end

    it("accepts one signed by the CA", T(function()
      local line, subject = run_case("client")
      assert.are.equal("hi", line)
      assert.are.equal("CN=quench client", subject)
    end))

    it("refuses a client without one, and one from another CA", T(function()
      for _, name in ipairs({ false, "rogue_client" }) do
        local line, _, msg, code, server = run_case(name or nil)
        assert.is_nil(line)
        assert.is_string(code)
        assert.matches("^ETLS_", msg)
        assert.is_false(server[1])          -- the server's handshake raised (assert)
      end
    end))
  end)

  it("upgrades a TCP stream on both sides with starttls", T(function()
    local srv = assert(tcp.listen("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local t = quench.spawn(function()
      local s = assert(srv:accept())
      assert.are.equal("STARTTLS", s:read())
      assert(s:write("GO\n"))
      local same = assert(s:starttls(server_opts("server", { server = true })))
      assert.are.equal(s, same)
      assert.are.equal("quench.tls.stream", getmetatable(s).__name)
      echo_lines(s)
      s:close()
    end)
    local c = assert(tcp.connect("127.0.0.1", port))
    assert(c:write("STARTTLS\n"))
    assert.are.equal("GO", c:read())
    assert.has_error(function() c:starttls({ cafile = pki.ca.cert }) end,
      "quench.tcp.stream:starttls: opts.servername is needed to verify the peer (or verify = false)")
    assert(c:starttls({ servername = "localhost", cafile = pki.ca.cert }))
    assert(c:write("secret\n"))
    assert.are.equal("secret", c:read())
    assert.are.equal(port, select(2, c:getpeername()))
    assert(c:shutdown())
    t:join()
    c:close()
    srv:close()
  end))

  it("resumes a session on the client", T(function()
    local _, port, stop = serve_with(server_opts("server"), echo_lines)
    local o = { cafile = pki.ca.cert, context = tls.context({ cafile = pki.ca.cert }) }
    o.cafile = nil
    local c1 = assert(tls.connect("localhost", port, o))
    assert(c1:write("a\n"))
    assert.are.equal("a", c1:read())          -- TLS 1.3: the ticket came before the echo
    assert.is_false(c1:session_reused())
    local sess = assert(c1:session())
    c1:close()
    o.session = sess
    local c2 = assert(tls.connect("localhost", port, o))
    assert.is_true(c2:session_reused())
    assert(c2:write("b\n"))
    assert.are.equal("b", c2:read())
    c2:close()
    stop()
  end))

  it("sends close_notify on shutdown, and reads a missing one as truncation", T(function()
    local _, port, stop = serve_with(server_opts("server"), function(s)
      local data = s:read("a")                  -- until the client's close_notify
      assert(s:write("got " .. #data))
      if data == "reset" then s:close_reset() return end
      assert(s:shutdown())
    end)
    local c <close> = assert(tls.connect("localhost", port, { cafile = pki.ca.cert }))
    assert(c:write("12345"))
    assert(c:shutdown())
    assert.are.equal("got 5", c:read("a"))    -- ended by the server's close_notify
    local c2 <close> = assert(tls.connect("localhost", port, { cafile = pki.ca.cert }))
    assert(c2:write("reset"))
    assert(c2:shutdown())
    local data, msg, code = c2:read("a")
    assert.is_nil(data)
    assert.is_true(code == "ETLS_TRUNCATED" or code == "ECONNRESET", msg)
    stop()
  end))

  it("closes the stream when a handshake is dropped (timeout), and never hangs", T(function()
    local srv = assert(tcp.listen("127.0.0.1", 0))     -- accepts, never answers
    local _, port = srv:getsockname()
    local ok, err = quench.timeout(0.2, tls.connect, "localhost", port, { cafile = pki.ca.cert })
    assert.is_false(ok)
    assert.is_true(quench.is_timeout(err))
    -- an accepted TLS stream whose client never speaks: its read, bounded
    local tsrv2 = assert(tls.listen("127.0.0.1", 0, server_opts("server")))
    local _, tport = tsrv2:getsockname()
    local c <close> = assert(tcp.connect("127.0.0.1", tport))
    local s = assert(tsrv2:accept())
    local e2
    ok, e2 = quench.timeout(0.1, s.read, s, "l")
    assert.is_false(ok)
    assert.is_true(quench.is_timeout(e2))
    assert.has_error(function() s:read() end, "quench.tls.stream:read: attempt to use a closed stream")
    assert.are.equal("", c:read("a"))          -- the server side is gone: EOF
    tsrv2:close()
    srv:close()
  end))

  it("reports bad options as errors naming the function, and bad files as values", T(function()
    assert.has_error(function() tls.connect("localhost", 1, { cafle = "x" }) end,
      "quench.tls.connect: unknown option 'cafle'")
    assert.has_error(function() tls.listen("127.0.0.1", 0, {}) end,
      "quench.tls.listen: a server needs opts.certificate and opts.key")
    assert.has_error(function()
      tls.listen("127.0.0.1", 0, server_opts("server", { verify = "peer" }))
    end, "quench.tls.listen: opts.verify = \"peer\" on a server needs opts.cafile or opts.capath")
    assert.has_error(function() tls.connect("localhost", 1, { min_version = "SSLv3" }) end,
      "quench.tls.connect: opts.min_version must be \"TLSv1.2\" or \"TLSv1.3\"")
    local s, msg, code = tls.listen("127.0.0.1", 0, { certificate = "/no/such.pem", key = "/no/k" })
    assert.is_nil(s)
    assert.are.equal("ETLS_CONFIG", code)
    assert.matches("opts.certificate: cannot use /no/such.pem", msg, 1, true)
    s, msg, code = tls.listen("127.0.0.1", 0, { certificate = pki.server.cert, key = pki.other.key })
    assert.is_nil(s)
    assert.are.equal("ETLS_CONFIG", code)
    assert.matches("key values mismatch", msg, 1, true)
    -- PEM text and an encrypted key with its password work as files do
    local srv = assert(tls.listen("127.0.0.1", 0, {
      certificate = tls_pki.read(pki.server.cert), key = pki.server_enc_key, password = "sesame" }))
    srv:close()
    s, msg, code = tls.listen("127.0.0.1", 0, {
      certificate = pki.server.cert, key = pki.server_enc_key, password = "wrong" })
    assert.is_nil(s)
    assert.are.equal("ETLS_CONFIG", code, msg)
  end))

  it("moves 64 MiB each way, random write and read sizes, reads interrupted by random " ..
     "timeouts (and retried): the SHA-256 of what each end sent and received match", T(function()
    -- smaller where every byte costs more: valgrind, and the ASan build
    -- (scripts/test.sh preloads its runtime)
    local total = (os.getenv("QUENCH_UNDER_VALGRIND") == "1" and (1 << 20))
      or ((os.getenv("LD_PRELOAD") or ""):find("asan", 1, true) and (4 << 20)) or (64 << 20)
    local srv = assert(tls.listen("127.0.0.1", 0, server_opts("server")))
    local _, port = srv:getsockname()
    local function digester()          -- `openssl dgst -sha256` reading a pipe
      return tls_pki.spawn(quench, "openssl", { "dgst", "-sha256", "-r" },
                           { stdin = "pipe", stdout = "pipe" })
    end
    local function digest_of(p)
      local out = assert(p.stdout:read("a"))
      assert.are.equal(0, p:wait())
      p:close()
      return out:match("^(%x+)")
    end
    -- both directions at once on stream s: a writer task and a reader task
    local function pump(s, seed, offset)
      local rng = rng_for(seed)
      local sent, received = digester(), digester()
      local writer = quench.spawn(function()
        local pos = 0
        while pos < total do
          local n = math.min(total - pos, rng(1, 200000))
          local chunk = expected(offset + pos, n)
          assert(s:write(chunk))
          assert(sent.stdin:write(chunk))
          pos = pos + n
        end
        assert(s:shutdown())                   -- close_notify: the peer's reader ends cleanly
        sent.stdin:close()
      end)
      local reader = quench.spawn(function()
        local got, timeouts = 0, 0
        while true do
          local ok, data, msg = quench.timeout(rng(0, 3) / 1000, s.read_some, s, rng(1, 100000))
          if ok then
            assert.is_nil(msg)
            if data == nil then break end
            got = got + #data
            assert(received.stdin:write(data))
          else
            timeouts = timeouts + 1
          end
        end
        received.stdin:close()
        return got, timeouts
      end)
      return function()
        assert(writer:join())
        local ok, got, timeouts = reader:join()
        assert(ok, got)
        return got, timeouts, digest_of(sent), digest_of(received)
      end
    end
    local server_side = quench.spawn(function()
      local s = assert(srv:accept())
      assert(s:handshake())                    -- not under a read timeout: that would close it
      local r = table.pack(pump(s, 11, 1000)())
      s:close()
      return table.unpack(r)
    end)
    local c = assert(tls.connect("localhost", port, { cafile = pki.ca.cert }))
    local c_got, c_timeouts, c_sent, c_received = pump(c, 22, 0)()
    local ok, s_got, s_timeouts, s_sent, s_received = server_side:join()
    assert(ok, s_got)
    c:close()
    srv:close()
    assert.are.equal(total, c_got)
    assert.are.equal(total, s_got)
    assert.are.equal(c_sent, s_received)
    assert.are.equal(s_sent, c_received)
    assert.are_not.equal(c_sent, s_sent)      -- different streams: the check can tell
    assert.is_true(c_timeouts + s_timeouts > 0, "no read was interrupted")
  end))

  describe("against openssl s_server (quench as client)", function()
    it("handshakes, echoes, picks ALPN, sends SNI, and ends with close_notify", T(function()
      local port = tls_pki.free_port(quench)
      local server <close> = tls_pki.spawn(quench, "openssl", {
        "s_server", "-accept", "127.0.0.1:" .. port, "-cert", pki.server.cert, "-key",
        pki.server.key, "-servername", "other.example", "-cert2", pki.other.cert, "-key2",
        pki.other.key, "-alpn", "h2,http/1.1", "-rev", "-quiet" })
      tls_pki.wait_port(quench, port, 10, server)
      local c = assert(tls.connect("localhost", port, { cafile = pki.ca.cert, alpn = { "http/1.1" } }))
      assert.are.equal("http/1.1", c:alpn())
      assert.are.equal("CN=localhost", c:peer_certificate().subject)
      assert(c:write("hello\n"))
      assert.are.equal("olleh", c:read())
      assert(c:shutdown())                     -- s_server -rev closes on our close_notify
      local rest, msg = c:read("a")
      assert.is_true(rest ~= nil or msg ~= nil)
      c:close()
      -- SNI: asking for other.example gets the other certificate, verified
      local c2 = assert(tls.connect("127.0.0.1", port, { servername = "other.example",
                                                        cafile = pki.ca.cert }))
      assert.are.equal("CN=other.example", c2:peer_certificate().subject)
      assert(c2:write("abc\n"))
      assert.are.equal("cba", c2:read())
      c2:close()
    end))

    it("presents a client certificate s_server asks for", T(function()
      local port = tls_pki.free_port(quench)
      local server <close> = tls_pki.spawn(quench, "openssl", {
        "s_server", "-accept", "127.0.0.1:" .. port, "-cert", pki.server.cert, "-key",
        pki.server.key, "-Verify", "1", "-CAfile", pki.ca.cert, "-verify_return_error",
        "-rev", "-quiet" })
      tls_pki.wait_port(quench, port, 10, server)
      local c <close> = assert(tls.connect("localhost", port, {
        cafile = pki.ca.cert, certificate = pki.client.cert, key = pki.client.key }))
      assert(c:write("pqr\n"))
      assert.are.equal("rqp", c:read())
    end))
  end)

  describe("against openssl s_client and curl (quench as server)", function()
    it("serves s_client: handshake, SNI, ALPN, echo, close_notify both ways", T(function()
      local seen = {}
      local _, port, stop, results = serve_with(server_opts("server", { alpn = { "h2", "x-echo" } }),
        function(s)
          assert(s:handshake())
          seen.sni, seen.alpn = s:servername(), s:alpn()
          echo_lines(s)                        -- until s_client's close_notify (a clean EOF)
          return "eof"
        end)
      local p <close> = tls_pki.spawn(quench, "openssl", {
        "s_client", "-connect", "127.0.0.1:" .. port, "-servername", "localhost",
        "-CAfile", pki.ca.cert, "-verify_return_error", "-alpn", "x-echo", "-quiet",
        "-no_ign_eof" }, { stdin = "pipe", stdout = "pipe" })
      assert(p.stdin:write("ping\n"))
      assert.are.equal("ping", p.stdout:read())
      p.stdin:close()                          -- s_client sends close_notify and exits
      assert.are.equal(0, p:wait())
      while #results < 1 do quench.sleep(0.01) end
      assert.are.same({ true, "eof", n = 2 }, results[1])
      assert.are.equal("localhost", seen.sni)
      assert.are.equal("x-echo", seen.alpn)
      stop()
    end))

    it("serves curl --cacert over HTTP/1.1", T(function()
      local _, port, stop = serve_with(server_opts("server", { alpn = { "http/1.1" } }),
        function(s)
          local req = assert(s:read())
          while s:read() ~= "\r" do end
          local body = "you asked for " .. req:match("^GET (%S+)")
          assert(s:write("HTTP/1.1 200 OK\r\nContent-Length: ", #body,
                         "\r\nConnection: close\r\n\r\n", body))
          assert(s:shutdown())
        end)
      local p <close> = tls_pki.spawn(quench, "curl", {
        "-sS", "--cacert", pki.ca.cert, "https://localhost:" .. port .. "/hello" },
        { stdout = "pipe" })
      assert.are.equal("you asked for /hello", p.stdout:read("a"))
      assert.are.equal(0, p:wait())
      -- and curl refuses us when it does not trust the CA
      local p2 <close> = tls_pki.spawn(quench, "curl", {
        "-sS", "--cacert", pki.rogue.cert, "https://localhost:" .. port .. "/" })
      assert.are.equal(60, p2:wait())          -- CURLE_PEER_FAILED_VERIFICATION
      stop()
    end))
  end)
end)
