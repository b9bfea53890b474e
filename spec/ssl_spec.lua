-- LuaSec's API on quench (quench.ssl), and Debian's lua-sec ssl.https,
-- unmodified, loaded by quench.socket's loader with `require "ssl"` giving
-- quench.ssl: against `openssl s_server -www` and HTTPS servers written
-- here with quench.tls, with certificates made at test time (a test CA,
-- verification on). Servers run on free loopback ports, stopped by PID
-- (kill on drop). A missing openssl or lua-sec fails these specs.
local quench = require "quench"
local qsocket = require "quench.socket"
local tls_pki = require "helpers.tls_pki"

local HTTPS_LUA = "/usr/share/lua/5.4/ssl/https.lua"

local function T(fn) return quench.test(fn, { clock = "real" }) end

local tiny_http = require "helpers.tiny_http"
local reply = tiny_http.reply

-- An HTTPS/1.1 server on quench.tls (helpers/tiny_http.lua). Returns port, stop.
local function https_server(pki_entry, handler)
  return tiny_http.serve(assert(quench.tls.listen("127.0.0.1", 0, {
    certificate = pki_entry.cert, key = pki_entry.key })), handler)
end

describe("quench.ssl (LuaSec's API) and Debian's ssl.https", function()
  local pki, https, ssl, ltn12
  setup(function()
    pki = tls_pki.make()
    assert(io.open(HTTPS_LUA), "Debian's lua-sec is needed (scripts/deps.sh installs it)"):close()
    https = qsocket.require "ssl.https"
    ssl = qsocket.require "ssl"
    ltn12 = require "ltn12"
  end)
  teardown(function() tls_pki.remove(pki) end)

  -- a request table as LuaSec users write it: verification on, our CA
  local function get(url, extra)
    local body = {}
    local t = { url = url, sink = ltn12.sink.table(body), verify = "peer", cafile = pki.ca.cert }
    for k, v in pairs(extra or {}) do t[k] = v end
    local r, code, headers, status = https.request(t)
    return r and table.concat(body), code, headers, status
  end

  it("is lua-sec's own ssl.https, with require \"ssl\" giving quench.ssl", function()
    assert.equal(require "quench.ssl", ssl)
    assert.equal("1.2.0", https._VERSION)                       -- lua-sec's file
    assert.equal(https, qsocket.require "ssl.https")            -- loaded once
    assert.not_equal(https, package.loaded["ssl.https"])
    assert.is_function(https.request)
    assert.is_function(https.tcp)
  end)

  it("fetches from openssl s_server -www, verifying against the test CA", T(function()
    local port = tls_pki.free_port(quench)
    local server <close> = tls_pki.spawn(quench, "openssl", {
      "s_server", "-accept", "127.0.0.1:" .. port, "-cert", pki.server.cert,
      "-key", pki.server.key, "-www", "-quiet" })
    tls_pki.wait_port(quench, port, 10, server)
    local body, code = get("https://localhost:" .. port .. "/")
    assert.equal(200, code)
    assert.matches("s_server", body)
    assert.matches("TLSv1.3", body)                    -- the page shows the session
    -- the simple form: lua-sec's https uses verify = "none" by default
    local b2, code2 = https.request("https://localhost:" .. port .. "/")
    assert.equal(200, code2)
    assert.matches("s_server", b2)
  end))

  it("runs overlapping requests in several tasks", T(function()
    local n = 5
    local barrier = quench.barrier(n)
    local port, stop = https_server(pki.server, function(path, conn)
      barrier:wait()                      -- answers only once all n are in
      reply(conn, "reply " .. path)
    end)
    local ok, results = quench.timeout(20, function()
      local tasks, out = {}, {}
      for i = 1, n do
        tasks[i] = quench.spawn(function() return get("https://localhost:" .. port .. "/" .. i) end)
      end
      for i = 1, n do out[i] = select(2, tasks[i]:join()) end
      return out
    end)
    stop()
    assert.is_true(ok, "the requests did not overlap")
    for i = 1, n do assert.equal("reply /" .. i, results[i]) end
  end))

  it("lets quench.timeout cut one request while the others go on", T(function()
    local port, stop = https_server(pki.server, function(path, conn)
      if path == "/slow" then quench.sleep(3600) end
      reply(conn, "fast")
    end)
    local slow = quench.spawn(function()
      return quench.timeout(0.3, get, "https://localhost:" .. port .. "/slow")
    end)
    local body, code = get("https://localhost:" .. port .. "/fast")
    assert.equal(200, code)
    assert.equal("fast", body)
    assert.is_false((select(2, slow:join())))
    assert.equal("fast", (get("https://localhost:" .. port .. "/fast")))
    stop()
  end))

  it("times out with https.TIMEOUT, saying \"wantread\" as LuaSec does", T(function()
    local port, stop = https_server(pki.server, function() quench.sleep(3600) end)
    local saved = https.TIMEOUT
    https.TIMEOUT = 0.2
    local r, err = get("https://localhost:" .. port .. "/")
    https.TIMEOUT = saved
    stop()
    assert.is_nil(r)
    assert.equal("wantread", err)
  end))

  it("refuses bad certificates with LuaSec's error string", T(function()
    for _, case in ipairs({ { pki.expired }, { pki.self }, { pki.other },
                            { pki.server, { cafile = pki.rogue.cert } } }) do
      local port, stop = https_server(case[1], function(_, conn) reply(conn, "secret") end)
      local r, err = get("https://localhost:" .. port .. "/", case[2])
      stop()
      assert.is_nil(r)
      assert.equal("certificate verify failed", err)
    end
  end))

  it("refuses a server that does not speak TLS, without hanging", T(function()
    local srv = assert(quench.tcp.listen("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local t = quench.spawn(function()
      local c = srv:accept()
      c:read("l")
      c:write("HTTP/1.1 400 Bad Request\r\n\r\n")
      c:close()
    end)
    local ok, r, err = quench.timeout(10, get, "https://localhost:" .. port .. "/")
    t:join()
    srv:close()
    assert.is_true(ok)
    assert.is_nil(r)
    assert.is_string(err)
    assert.not_equal("certificate verify failed", err)
  end))

  describe("ssl.wrap", function()
    local function connect(port)
      local s = qsocket.tcp()
      assert(s:connect("127.0.0.1", port))
      return s
    end

    it("speaks to s_server: sni, dohandshake, receive, send, certificate, info", T(function()
      local port = tls_pki.free_port(quench)
      local server <close> = tls_pki.spawn(quench, "openssl", {
        "s_server", "-accept", "127.0.0.1:" .. port, "-cert", pki.server.cert,
        "-key", pki.server.key, "-rev", "-quiet" })
      tls_pki.wait_port(quench, port, 10, server)
      local sock = connect(port)
      local params = { mode = "client", protocol = "any", verify = "peer", cafile = pki.ca.cert,
                       options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1" } }
      local conn = assert(ssl.wrap(sock, params))
      assert.equal("closed", select(2, sock:receive()))      -- the socket is the SSL object's
      assert.equal("closed", select(2, conn:receive()))      -- no handshake yet
      assert.is_true(conn:sni("localhost"))
      assert.is_true(conn:dohandshake())
      assert.is_true(conn:dohandshake())                     -- done already
      assert.matches("^SSL connection: ", tostring(conn))
      assert.equal(6, conn:send("hello\n"))
      assert.equal("olleh", conn:receive("*l"))
      assert.equal(4, conn:send("abc\nxyz", 1, 4))   -- the last byte sent
      assert.equal("cb", conn:receive(2))
      assert.equal("a", conn:receive("*l"))
      assert.is_true(conn:getpeerverification())
      local info = conn:info()
      assert.equal("TLSv1.3", info.protocol)
      assert.equal(conn:info("cipher"), info.cipher)
      assert.is_number(info.bits)
      local cert = conn:getpeercertificate()
      assert.equal("localhost", cert:subject()[1].value)
      assert.equal("commonName", cert:subject()[1].name)
      assert.equal("2.5.4.3", cert:subject()[1].oid)
      assert.equal("quench test CA", cert:issuer()[1].value)
      local alt = cert:extensions()["2.5.29.17"]
      assert.same({ "localhost" }, alt.dNSName)
      assert.same({ "127.0.0.1" }, alt.iPAddress)
      assert.matches("^%-%-%-%-%-BEGIN CERTIFICATE", cert:pem())
      local p = io.popen("env -u LD_PRELOAD openssl x509 -noout -fingerprint -sha1 -in "
                         .. pki.server.cert)
      local want = p:read("l"):match("=(.*)$"):gsub(":", ""):lower()
      p:close()
      assert.equal(want, cert:digest())                       -- sha1, LuaSec's default
      assert.equal(64, #cert:digest("sha256"))
      assert.matches("^%u%l%l [ %d]%d %d%d:%d%d:%d%d %d%d%d%d GMT$", cert:notafter())
      assert.is_true(cert:validat(os.time()))
      assert.is_false(cert:validat(os.time() + 365 * 86400))
      assert.is_nil(conn:getpeercertificate(1))               -- the chain is not kept
      assert.is_nil(conn:getfinished())
      -- a read timeout: "wantread", with the partial data, and the connection goes on
      conn:settimeout(0.1)
      assert.equal(4, conn:send("xyz\n"))
      assert.equal("z", conn:receive(1))
      local r, err, partial = conn:receive(10)
      assert.is_nil(r)
      assert.equal("wantread", err)
      assert.equal("yx\n", partial)
      assert.equal(3, conn:send("ab\n"))                    -- and it goes on
      assert.equal("ba", conn:receive())
      conn:close()
      assert.equal("closed", select(2, conn:receive()))
    end))

    it("reads a peer gone without close_notify as LuaSec does, or as closed if told to", T(function()
      local got = {}
      for i, options in ipairs({ { "all" }, { "all", "ignore_unexpected_eof" } }) do
        local port = tls_pki.free_port(quench)
        local srv = tls_pki.spawn(quench, "openssl", {
          "s_server", "-accept", "127.0.0.1:" .. port, "-cert", pki.server.cert,
          "-key", pki.server.key, "-rev", "-quiet" })
        tls_pki.wait_port(quench, port)
        local conn = assert(ssl.wrap(connect(port), { mode = "client", verify = "peer",
                                                      cafile = pki.ca.cert, options = options }))
        conn:sni("localhost")
        assert(conn:dohandshake())
        conn:send("abc\n")
        assert.equal("cba", conn:receive())
        srv:kill("SIGKILL")                       -- the kernel sends FIN: no close_notify
        srv:wait()
        got[i] = select(2, conn:receive())
        conn:close()
      end
      assert.same({ "unexpected eof while reading", "closed" }, got)
    end))

    it("verifies the name given by sni, and says why in getpeerverification", T(function()
      local port, stop = https_server(pki.other, function(_, conn) reply(conn, "x") end)
      local conn = assert(ssl.wrap(connect(port), { mode = "client", cafile = pki.ca.cert,
                                                    verify = "peer" }))
      conn:sni("localhost")
      local ok, err = conn:dohandshake()
      assert.is_nil(ok)
      assert.equal("certificate verify failed", err)
      local v, why = conn:getpeerverification()
      assert.is_false(v)
      assert.same({ [0] = { "hostname mismatch" } }, why)
      assert.same({ nil, "closed" }, { conn:dohandshake() })
      -- without sni, LuaSec checks the chain only: the CA signed it
      local c2 = assert(ssl.wrap(connect(port), { mode = "client", cafile = pki.ca.cert,
                                                  verify = "peer" }))
      assert.is_true(c2:dohandshake())
      assert.equal("other.example", c2:getpeercertificate():subject()[1].value)
      c2:close()
      stop()
    end))

    it("is a server: mode = \"server\", with client certificates", T(function()
      local srv = assert(qsocket.bind("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local sctx = assert(ssl.newcontext({
        mode = "server", protocol = "tlsv1_3", key = pki.server.key,
        certificate = pki.server.cert, cafile = pki.ca.cert,
        verify = { "peer", "fail_if_no_peer_cert" } }))
      local served = quench.spawn(function()
        local out = {}
        for i = 1, 2 do
          local c = assert(srv:accept())
          local s = assert(ssl.wrap(c, sctx))
          local ok, err = s:dohandshake()
          if ok then
            out[i] = s:getpeercertificate():subject()[1].value
            s:send("welcome " .. s:receive() .. "\n")
          else
            out[i] = err
          end
          s:close()
        end
        return out
      end)
      local conn = assert(ssl.wrap(connect(port), {
        mode = "client", protocol = "tlsv1_3", verify = "peer", cafile = pki.ca.cert,
        certificate = pki.client.cert, key = pki.client.key }))
      conn:sni("localhost")
      assert.is_true(conn:dohandshake())
      conn:send("alice\n")
      assert.equal("welcome alice", conn:receive())
      conn:close()
      -- no client certificate: refused (TLS 1.3: the client learns it at its first read)
      local c2 = assert(ssl.wrap(connect(port), { mode = "client", verify = "peer",
                                                  cafile = pki.ca.cert }))
      c2:sni("localhost")
      c2:dohandshake()
      c2:send("bob\n")
      assert.is_nil(c2:receive())
      c2:close()
      local _, out = served:join()
      srv:close()
      assert.equal("quench client", out[1])
      assert.is_string(out[2])
      assert.not_equal("quench client", out[2])
    end))

    it("bounds dohandshake by settimeout, and by quench.timeout", T(function()
      local srv = assert(quench.tcp.listen("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local held = {}
      local t = quench.spawn(function()
        while true do
          local c = srv:accept()
          if not c then return end
          held[#held + 1] = c                       -- accepts, never answers
        end
      end)
      local conn = assert(ssl.wrap(connect(port), { mode = "client", verify = "none" }))
      conn:settimeout(0.2)
      assert.same({ nil, "wantread" }, { conn:dohandshake() })
      assert.same({ nil, "closed" }, { conn:dohandshake() })   -- a handshake never resumes
      local c2 = assert(ssl.wrap(connect(port), { mode = "client", verify = "none" }))
      assert.is_false(quench.timeout(0.2, c2.dohandshake, c2))
      srv:close()
      t:abort()
      for _, c in ipairs(held) do c:close() end
    end))

    it("returns nil, msg for bad parameters and raises for a bad socket", T(function()
      local function nc(p) return select(2, ssl.newcontext(p)) end
      assert.equal("invalid mode", nc({}))
      assert.matches("invalid protocol %(tlsv1%)", nc({ mode = "client", protocol = "tlsv1" }))
      assert.equal("invalid option (no_such)", nc({ mode = "client", options = { "no_such" } }))
      assert.equal("invalid verify option (maybe)", nc({ mode = "client", verify = "maybe" }))
      assert.matches("not supported", nc({ mode = "client", verifyext = { "lsec_continue" } }))
      assert.matches("certificate and key", nc({ mode = "server" }))
      assert.matches("/nonexistent", nc({ mode = "server", key = "/nonexistent",
                                          certificate = "/nonexistent" }))
      assert.error_matches(function() ssl.wrap({}, { mode = "client" }) end,
                           "bad argument #1 to 'wrap'")
      assert.error_matches(function() ssl.wrap(qsocket.tcp(), 42) end, "bad argument #2 to 'wrap'")
      assert.error_matches(function() qsocket.require "ssl.core" end, "not provided by quench.ssl")
    end))
  end)
end)
