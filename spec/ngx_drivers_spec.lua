-- More of Debian's OpenResty drivers, unmodified, on quench.ngx:
-- resty.dns.resolver (lua-nginx-dns) against dnsmasq (dnsmasq-base), and
-- resty.websocket.client (lua-nginx-websocket) against a python3-websockets
-- server (spec/helpers/ws_echo.py), resty.redis.connector
-- (lua-nginx-redis-connector) against redis-server and a redis sentinel;
-- and what they need beyond a cosocket:
-- `bit` (quench.bit), `ffi` char buffers (quench.ffi), ngx.re on PCRE2
-- (quench.ngx_re, lua-rex-pcre2), ngx.config, the "nginx.*" searcher.
-- Each server runs on a free loopback port, stopped by PID (kill on drop).
-- A missing package or binary fails these specs.
local quench = require "quench"
local ngxq = require "quench.ngx"
local tls_pki = require "helpers.tls_pki"

local DNSMASQ = "/usr/sbin/dnsmasq"
local PYTHON = "/usr/bin/python3"   -- Debian's, which has python3-websockets
local REDIS = "/usr/bin/redis-server"

local function T(fn) return quench.test(fn, { clock = "real" }) end

local free_port = require("helpers.servers").free_port

-- Start a server (kill on drop: the process is killed when the handle is
-- closed or collected) and wait until it accepts TCP on port.
local function start(file, args, port)
  local p, msg = quench.process.spawn(file, {
    args = args, stdout = "ignore", stderr = "ignore", kill_on_drop = true,
    env = { LD_PRELOAD = false },
  })
  assert(p, ("%s: %s (is its Debian package installed? scripts/deps.sh)"):format(file, msg))
  for _ = 1, 200 do
    local c = quench.tcp.connect("127.0.0.1", port)
    if c then
      c:close()
      return p
    end
    local i = quench.select(quench.sleep_op(0.05), p:wait_op())
    assert(i == 1, file .. " exited before listening")
  end
  error(file .. ": nothing listens on port " .. port)
end

local function stop(p)
  p:kill("SIGKILL")
  p:wait()
  p:close()
end

describe("quench.ngx for more OpenResty drivers", function()
  setup(function() ngxq.install() end)

  describe("bit (quench.bit, LuaBitOp's API)", function()
    it("gives signed 32-bit results, as LuaJIT's bit", function()
      local bit = require "bit"
      assert.equal(require "quench.bit", bit)
      assert.equal(15, bit.band(0xff, 0x0f, 0x3f))
      assert.equal(-2147483648, bit.lshift(1, 31))
      assert.equal(1, bit.lshift(1, 32))           -- the count is taken mod 32, as LuaBitOp's
      assert.equal(15, bit.rshift(-1, 28))
      assert.equal(-16, bit.arshift(-256, 4))
      assert.equal(-1, bit.bnot(0))
      assert.equal(5, bit.tobit(2 ^ 32 + 5))
      assert.equal(0x78563412, bit.bswap(0x12345678))
      assert.equal(3, bit.rol(0x80000001, 1))
      assert.equal("ffffffff", bit.tohex(-1))
      assert.equal("00FF", bit.tohex(255, -4))
      assert.equal(0x12 ~ 0x34, bit.bxor(0x12, 0x34))
      assert.error_matches(function() bit.band("x") end, "bad argument #1 to 'band'")
    end)
  end)

  describe("ffi (quench.ffi: byte buffers only)", function()
    it("makes char[?] buffers, indexed from 0, and strings of them", function()
      local ffi = require "ffi"
      assert.equal(require "quench.ffi", ffi)
      local buf = ffi.new(ffi.typeof("char[?]"), 10000)
      for i = 0, 9999 do buf[i] = (i % 251) + 200 end      -- a char keeps 8 bits
      local s = ffi.string(buf, 10000)
      assert.equal(10000, #s)
      assert.equal(200 % 256, s:byte(1))
      assert.equal((9999 % 251 + 200) % 256, s:byte(10000))
      assert.equal("", ffi.string(ffi.new("char[?]", 4)))   -- up to the first zero
      assert.error_matches(function() buf[10000] = 1 end, "out of the buffer's range")
      assert.error_matches(function() ffi.cdef "int x;" end, "ffi.cdef is not supported")
      assert.error_matches(function() ffi.typeof("int[?]") end, "not supported")
    end)
  end)

  describe("ngx.re (PCRE2)", function()
    it("matches, finds, iterates and substitutes as OpenResty's", function()
      local re = ngxq.ngx.re
      local m = re.match("hello 1234", [[(\w+)\s+(?<num>\d+)(x)?]], "jo")
      assert.equal("hello 1234", m[0])
      assert.equal("hello", m[1])
      assert.equal("1234", m[2])
      assert.equal("1234", m.num)
      assert.is_false(m[3])                                   -- did not take part
      assert.is_nil(re.match("abc", [[\d]]))
      assert.equal("ABC", re.match("xABCx", "abc", "i")[0])
      local ctx = { pos = 3 }
      assert.equal("cd", re.match("abcdcd", "cd", nil, ctx)[0])
      assert.equal(5, ctx.pos)
      assert.same({ 3, 4 }, { re.find("abcd", "cd") })
      assert.same({ 4, 4 }, { re.find("abcd", "c(d)", nil, nil, 1) })
      local got = {}
      for mm in re.gmatch("a1b22c333", [[\d+]]) do got[#got + 1] = mm[0] end
      assert.same({ "1", "22", "333" }, got)
      assert.same({ "2001:db8::7", 1 }, { re.sub("2001:db8:0:0:0:0:0:7",
                                                  "^(0:)+|(:0)+$|:(0:)+", "::", "jo") })
      assert.same({ "4.3.2.1.in-addr.arpa", 1 }, { re.sub("1.2.3.4",
        [[(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})]], "$4.$3.$2.$1.in-addr.arpa", "ajo") })
      assert.same({ "x-y-z", 2 }, { re.gsub("x y z", " ", "-") })
      assert.same({ "[a][b]", 2 }, { re.gsub("ab", "(?<c>.)", "[${c}]") })
      assert.same({ "$a", 1 }, { re.sub("a", "a", "$$$0") })
      assert.same({ "AB", 2 }, { re.gsub("ab", ".", function(c) return c[0]:upper() end) })
      assert.same({ "-a-b-", 3 }, { re.gsub("ab", "x*", "-") })
      local r, _, err = re.sub("a", "(", "x")
      assert.is_nil(r)
      assert.matches("failed to compile regex", err)
      assert.error_matches(function() re.match("a", "a", "Q") end, "unknown flag")
      assert.error_matches(function() re.match("a", 5) end, "bad argument #2 to 'match'")
    end)
  end)

  describe("resty.dns.resolver (lua-nginx-dns) against dnsmasq", function()
    local BIG = ("x"):rep(200) .. "," .. ("y"):rep(200) .. "," .. ("z"):rep(200)
    local function dnsmasq(port)
      return start(DNSMASQ, {
        "--keep-in-foreground", "--port=" .. port, "--listen-address=127.0.0.1",
        "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file=", "--user=root",
        "--address=/example.test/192.0.2.7", "--address=/example.test/2001:db8::7",
        "--host-record=web.test,192.0.2.10,2001:db8::10", "--cname=www.test,web.test",
        "--txt-record=txt.test,hello world", "--txt-record=big.test," .. BIG,
        "--mx-host=mx.test,mail.test,10", "--srv-host=_sip._tcp.test,sip.test,5060,1,2",
        "--ptr-record=7.2.0.192.in-addr.arpa,ptr.test",
      }, port)
    end

    local resolver
    setup(function() resolver = require "resty.dns.resolver" end)

    it("is Debian's file, loaded unmodified", function()
      assert.matches("nginx/dns/resolver.lua$", package.searchpath("dns.resolver", ngxq.RESTY_PATH))
      assert.is_function(resolver.new)
      assert.is_function(resolver.compress_ipv6_addr)
    end)

    it("answers A, AAAA, CNAME, TXT, MX, SRV and PTR over UDP", T(function()
      local port = free_port()
      local _srv <close> = dnsmasq(port)
      local r = assert(resolver:new({ nameservers = { { "127.0.0.1", port } }, timeout = 2000 }))
      local a = assert(r:query("host.example.test"))
      assert.equal("192.0.2.7", a[1].address)
      assert.equal(r.TYPE_A, a[1].type)
      local aaaa = assert(r:query("host.example.test", { qtype = r.TYPE_AAAA }))
      assert.equal("2001:db8::7", resolver.compress_ipv6_addr(aaaa[1].address))
      local c = assert(r:query("www.test"))
      assert.equal("web.test", c[1].cname)
      assert.equal("192.0.2.10", c[2].address)
      local txt = assert(r:query("txt.test", { qtype = r.TYPE_TXT }))
      assert.equal("hello world", txt[1].txt)
      local mx = assert(r:query("mx.test", { qtype = r.TYPE_MX }))
      assert.same({ 10, "mail.test" }, { mx[1].preference, mx[1].exchange })
      local srvr = assert(r:query("_sip._tcp.test", { qtype = r.TYPE_SRV }))
      assert.same({ 5060, "sip.test", 1, 2 },
                  { srvr[1].port, srvr[1].target, srvr[1].priority, srvr[1].weight })
      local ptr = assert(r:reverse_query("192.0.2.7"))        -- arpa_str: ngx.re.sub
      assert.equal("ptr.test", ptr[1].ptrdname)
      local refused = assert(r:query("nothing.invalid"))
      assert.equal(5, refused.errcode)                         -- dnsmasq refuses it
    end))

    it("falls back to TCP for a truncated answer, and queries TCP with tcp_query", T(function()
      local port = free_port()
      local _srv <close> = dnsmasq(port)
      local connects = 0
      local connect = ngxq.Tcp.connect
      ngxq.Tcp.connect = function(...)
        connects = connects + 1
        return connect(...)
      end
      local r = assert(resolver:new({ nameservers = { { "127.0.0.1", port } }, timeout = 2000 }))
      local ok, big = pcall(r.query, r, "big.test", { qtype = r.TYPE_TXT })
      local after_big = connects
      local ok2, a = pcall(r.tcp_query, r, "host.example.test")
      ngxq.Tcp.connect = connect
      assert(ok, big)
      assert(ok2, a)
      assert.same({ ("x"):rep(200), ("y"):rep(200), ("z"):rep(200) }, big[1].txt)
      assert.equal(1, after_big)                  -- over 512 bytes: UDP said truncated
      assert.equal("192.0.2.7", a[1].address)
      assert.equal(2, connects)
    end))

    it("times out when the server is gone", T(function()
      local port = free_port()
      local srv = dnsmasq(port)
      local r = assert(resolver:new({ nameservers = { { "127.0.0.1", port } },
                                      retrans = 2, timeout = 200 }))
      assert(r:query("host.example.test"))
      stop(srv)
      local t0 = quench.now()
      local ans, err = r:query("host.example.test")
      assert.is_nil(ans)
      assert.matches("failed to receive reply from UDP server 127.0.0.1:" .. port, err, 1, true)
      assert.is_true(quench.now() - t0 < 10)
      local ans2, err2 = r:tcp_query("host.example.test")
      assert.is_nil(ans2)
      assert.matches("failed to connect to TCP server", err2, 1, true)
    end))

    it("runs concurrent queries from many tasks, each with its own resolver", T(function()
      local port = free_port()
      local _srv <close> = dnsmasq(port)
      local tasks = {}
      for i = 1, 20 do
        tasks[i] = quench.spawn(function()
          local r = assert(resolver:new({ nameservers = { { "127.0.0.1", port } } }))
          local name = i % 2 == 0 and ("h" .. i .. ".example.test") or "www.test"
          local ans = assert(r:query(name))
          return ans[#ans].address
        end)
      end
      for i = 1, 20 do
        local ok, addr = tasks[i]:join()
        assert(ok, addr)
        assert.equal(i % 2 == 0 and "192.0.2.7" or "192.0.2.10", addr)
      end
    end))

    it("lets quench.timeout cut a query", T(function()
      local u = assert(quench.udp.bind("127.0.0.1", 0))      -- a server that never answers
      local _, port = u:getsockname()
      local r = assert(resolver:new({ nameservers = { { "127.0.0.1", port } }, timeout = 60000 }))
      assert.is_false(quench.timeout(0.2, r.query, r, "host.example.test"))
      u:close()
    end))
  end)

  describe("resty.websocket.client (lua-nginx-websocket) against python websockets", function()
    local client
    setup(function() client = require "resty.websocket.client" end)

    local function ws_server(port)
      return start(PYTHON, { "spec/helpers/ws_echo.py", tostring(port) }, port)
    end

    it("is Debian's file, its protocol module found as nginx.websocket.protocol", function()
      assert.is_function(client.new)
      assert.is_table(package.loaded["nginx.websocket.protocol"])
    end)

    it("connects, sends text and binary, pings, and closes", T(function()
      local port = free_port()
      local _srv <close> = ws_server(port)
      local ws = assert(client:new({ timeout = 5000, max_payload_len = 200000 }))
      assert.equal(1, ws:connect("ws://127.0.0.1:" .. port .. "/echo"))
      assert(ws:send_text("hello"))
      assert.same({ "hello", "text" }, { ws:recv_frame() })
      local big = ("\0\255ab"):rep(20000)                    -- 80000 bytes: the 64-bit length
      assert(ws:send_binary(big))
      local data, typ = ws:recv_frame()
      assert.equal("binary", typ)
      assert.equal(big, data)
      assert(ws:send_ping("p1"))
      assert.same({ "p1", "pong" }, { ws:recv_frame() })
      assert(ws:send_text("bye"))                            -- the server closes
      local msg, t, code = ws:recv_frame()
      assert.same({ "bye", "close", 1000 }, { msg, t, code })
      ws:close()
    end))

    it("answers the server's ping with a pong, and closes with a code", T(function()
      local port = free_port()
      local _srv <close> = ws_server(port)
      local ws = assert(client:new({ timeout = 5000 }))
      assert(ws:connect("ws://127.0.0.1:" .. port .. "/ping"))
      assert.same({ "hi", "ping" }, { ws:recv_frame() })
      assert(ws:send_pong("hi"))
      assert.same({ "got pong", "text" }, { ws:recv_frame() })
      assert(ws:send_close(1000, "done"))
      local msg, t, code = ws:recv_frame()
      assert.same({ "done", "close", 1000 }, { msg, t, code })
    end))

    it("times out a silent server, and goes on after the timeout", T(function()
      local port = free_port()
      local _srv <close> = ws_server(port)
      local ws = assert(client:new({ timeout = 200 }))
      assert(ws:connect("ws://127.0.0.1:" .. port .. "/silent"))
      assert(ws:send_text("x"))
      local data, typ, err = ws:recv_frame()
      assert.is_nil(data)
      assert.is_nil(typ)
      assert.equal("failed to receive the first 2 bytes: timeout", err)
      assert(ws:send_text("still there"))                    -- a timeout is not fatal
      ws:set_timeout(60000)
      assert.is_false(quench.timeout(0.2, ws.recv_frame, ws))   -- quench's bound, sooner
    end))

    it("speaks wss:// through sslhandshake, verifying the server", T(function()
      local pki = tls_pki.make()
      local saved = ngxq.ssl_trusted_certificate
      ngxq.ssl_trusted_certificate = pki.ca.cert          -- lua_ssl_trusted_certificate
      local ok, err = pcall(function()
        local port = free_port()
        local _good <close> = start(PYTHON, { "spec/helpers/ws_echo.py", tostring(port),
                                              pki.server.cert, pki.server.key }, port)
        local ws = assert(client:new({ timeout = 5000 }))
        assert.equal(1, ws:connect("wss://localhost:" .. port .. "/echo", { ssl_verify = true }))
        assert(ws:send_text("secret"))
        assert.same({ "secret", "text" }, { ws:recv_frame() })
        ws:close()
        local other = free_port()
        local _bad <close> = start(PYTHON, { "spec/helpers/ws_echo.py", tostring(other),
                                             pki.other.cert, pki.other.key }, other)
        local r, e = client:new({ timeout = 5000 }):connect("wss://localhost:" .. other .. "/echo",
                                                             { ssl_verify = true })
        assert.is_nil(r)
        assert.equal("ssl handshake failed: certificate verify failed: hostname mismatch", e)
      end)
      ngxq.ssl_trusted_certificate = saved
      tls_pki.remove(pki)
      assert(ok, err)
    end))

    it("reports a server that goes away", T(function()
      local port = free_port()
      local srv = ws_server(port)
      local ws = assert(client:new({ timeout = 5000 }))
      assert(ws:connect("ws://127.0.0.1:" .. port .. "/echo"))
      stop(srv)
      local data, _, err = ws:recv_frame()
      assert.is_nil(data)
      assert.matches("^failed to receive the first 2 bytes: ", err)
      assert.not_equal("failed to receive the first 2 bytes: timeout", err)
      assert.same({ nil, "fatal error already happened" }, { ws:send_text("x") })
      local ws2 = assert(client:new({ timeout = 2000 }))
      local ok, cerr = ws2:connect("ws://127.0.0.1:" .. port .. "/echo")
      assert.is_nil(ok)
      assert.equal("failed to connect: connection refused", cerr)
    end))
  end)

  describe("resty.redis.connector (lua-nginx-redis-connector) against redis-server", function()
    local rc
    local logged = {}
    local sink
    setup(function()
      rc = require "resty.redis.connector"
      ngxq.log_level = ngxq.ngx.WARN
      sink = ngxq.log_sink
      ngxq.log_sink = function(level, msg) logged[#logged + 1] = { level, msg } end
    end)
    teardown(function()
      ngxq.log_sink = sink
      ngxq.log_level = ngxq.ngx.ERR
    end)

    -- a redis-server with a password, and a sentinel watching it
    local function redis_pair()
      local mport = free_port()
      local master = start(REDIS, { "--port", tostring(mport), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--requirepass", "sesame" }, mport)
      local sport = free_port()
      local conf = os.tmpname()
      local f = assert(io.open(conf, "w"))
      f:write("port ", sport, "\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 ", mport,
              " 1\nsentinel auth-pass mymaster sesame\n")
      f:close()
      local sentinel = start(REDIS, { conf, "--sentinel" }, sport)
      return mport, sport, function()
        stop(sentinel)
        stop(master)
        os.remove(conf)
      end
    end

    it("needs settimeout(table) to mean the default timeout, as OpenResty", function()
      local sock = ngxq.ngx.socket.tcp()
      sock:settimeout(100)
      local n = #logged
      sock:settimeout({})                       -- the connector's r:set_timeout(self, ...)
      assert.equal(60, sock.read_timeout)
      assert.equal(ngxq.ngx.WARN, logged[n + 1][1])
      ngxq.log_level = ngxq.ngx.ERR
      assert.error_matches(function() sock:settimeout("soon") end, "bad argument #2 to 'settimeout'")
    end)

    it("connects by host, by URL (password, db), and through a sentinel", T(function()
      local mport, sport, stop_all = redis_pair()
      local ok, err = pcall(function()
        local r = assert(rc.new():connect({ url = "redis://sesame@127.0.0.1:" .. mport .. "/3" }))
        assert.equal("OK", r:set("k", "in db 3"))
        local r2 = assert(rc.new({ password = "sesame", db = 3 }):connect({
          host = "127.0.0.1", port = mport }))
        assert.equal("in db 3", r2:get("k"))
        local bad, berr = rc.new():connect({ host = "127.0.0.1", port = mport, password = "wrong" })
        assert.is_falsy(bad)
        assert.matches("WRONGPASS", berr)
        -- the sentinel names the master; a dead sentinel first is skipped
        local c = rc.new({ master_name = "mymaster", password = "sesame", db = 3,
          sentinels = { { host = "127.0.0.1", port = free_port() },
                        { host = "127.0.0.1", port = sport } } })
        local m = assert(c:connect())
        assert.equal("in db 3", m:get("k"))
        assert.equal(1, c:set_keepalive(m))                     -- discard, then the pool
        local again = assert(c:connect())
        assert.equal(1, again:get_reused_times())
        local s = assert(rc.new():connect({ url = "sentinel://sesame@mymaster:m/3",
          sentinels = { { host = "127.0.0.1", port = sport } } }))
        assert.equal("in db 3", s:get("k"))
      end)
      stop_all()
      assert(ok, err)
    end))

    it("reports a server that is not there, and a dead master", T(function()
      local mport, sport, stop_all = redis_pair()
      local ok, err = pcall(function()
        local r, e = rc.new():connect({ host = "127.0.0.1", port = free_port() })
        assert.is_nil(r)
        assert.equal("connection refused", e)
        local none, e2, previous = rc.new({ sentinels = { { host = "127.0.0.1", port = free_port() } } })
          :connect()
        assert.is_nil(none)
        assert.equal("no hosts available", e2)
        assert.same({ "connection refused" }, previous)
        local c = rc.new({ master_name = "mymaster", password = "sesame",
                           sentinels = { { host = "127.0.0.1", port = sport } } })
        local m = assert(c:connect())
        assert(m:set("x", 1))
        assert.is_true(quench.timeout(10, function()              -- the master is killed
          os.execute("env -u LD_PRELOAD redis-cli -p " .. mport
                     .. " -a sesame --no-auth-warning shutdown nosave >/dev/null 2>&1")
        end))
        local res, gerr = m:get("x")
        assert.is_nil(res)
        assert.is_string(gerr)
        local m2, e3 = c:connect()                                -- the sentinel still names it
        assert.is_nil(m2)
        assert.equal("connection refused", e3)
      end)
      stop_all()
      assert(ok, err)
    end))

    it("lets quench.timeout cut a blocking command", T(function()
      local mport, _, stop_all = redis_pair()
      local ok, err = pcall(function()
        local r = assert(rc.new({ password = "sesame" }):connect({ host = "127.0.0.1", port = mport }))
        assert.is_false(quench.timeout(0.2, r.blpop, r, "nothing", 0))
        local r2 = assert(rc.new({ password = "sesame" }):connect({ host = "127.0.0.1", port = mport }))
        assert.equal("PONG", r2:ping())
      end)
      stop_all()
      assert(ok, err)
    end))
  end)
end)
