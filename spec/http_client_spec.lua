-- HTTP client (issue 18): quench.http.request (libcurl on the runtime's
-- loop) against python3's http.server, quench.http servers and nginx
-- (plain and TLS, certificates made by openssl at test time), each started
-- here on a free loopback port and stopped by PID. Real clock: the point is
-- real I/O. A missing server binary fails the spec loudly.
local quench = require "quench"
local pki_helper = require "spec.helpers.tls_pki"
local http = quench.http

local function T(fn) return quench.test(fn, { clock = "real" }) end

local free_port = function() return pki_helper.free_port(quench) end

-- A peer program without the sanitizer preload, killed when dropped.
local function spawn(file, args)
  local p, msg = quench.process.spawn(file, {
    args = args, stdout = "ignore", stderr = "ignore", env = { LD_PRELOAD = false },
    kill_on_drop = true,
  })
  assert(p, ("%s: %s (is its Debian package installed? scripts/deps.sh)"):format(file, msg))
  return p
end

local function tmpdir()
  local p <close> = io.popen("mktemp -d /tmp/quench-httpc.XXXXXX")
  return p:read("l")
end

local function write(path, s)
  local f <close> = assert(io.open(path, "wb"))
  f:write(s)
end

-- A quench HTTP server on 127.0.0.1:0: its port and a stop function.
local function serve(handler)
  local srv = assert(http.listen("127.0.0.1", 0))
  local _, port = srv:getsockname()
  local h = quench.spawn(srv.serve, srv, handler)
  return port, function()
    srv:stop(0)
    h:join()
  end
end

local function until_true(seconds, fn)
  return quench.timeout(seconds, function()
    while not fn() do quench.sleep(0.01) end
    return true
  end)
end

describe("quench.http.request", function()
  describe("against python3 -m http.server", function()
    it("GETs a file, HEADs it, and gets a 404", T(function()
      local dir = tmpdir()
      local body = ("0123456789abcdef"):rep(8192)                   -- 128 KiB
      write(dir .. "/data.txt", body)
      local port = free_port()
      local server <close> = spawn("python3", { "-m", "http.server", tostring(port),
                                                "--bind", "127.0.0.1", "--directory", dir })
      pki_helper.wait_port(quench, port, 10, server)
      local url = ("http://127.0.0.1:%d/data.txt"):format(port)
      local res = assert(http.request(url))
      assert.equal(200, res.status)
      assert.equal(tostring(#body), res.headers["Content-Length"])
      assert.equal(tostring(#body), res.headers["content-length"])
      assert.equal(res.headers["content-length"], res:header("CONTENT-LENGTH"))
      assert.equal(body, res:body())
      assert.equal(body, res:body())                    -- the same body again
      local head = assert(http.request { method = "HEAD", url = url })
      assert.equal(200, head.status)
      assert.equal(tostring(#body), head.headers["content-length"])
      assert.equal("", head:body())
      local missing = assert(http.request(("http://127.0.0.1:%d/nope"):format(port)))
      assert.equal(404, missing.status)
      missing:close()
      os.execute("rm -rf '" .. dir .. "'")
    end))
  end)

  describe("against a quench HTTP server", function()
    it("POSTs a string body and a streamed (chunked) one, with headers both ways", T(function()
      local port, stop = serve(function(req, res)
        res:header("X-Method", req.method)
        res:header("X-Got", req.headers["x-token"] or "none")
        res:header("Set-Thing", "a")
        res:header("Set-Thing", "b")
        res:finish((req:body() or "?") .. "|" .. (req.headers["transfer-encoding"] or "fixed"))
      end)
      local url = ("http://127.0.0.1:%d/echo"):format(port)
      local res = assert(http.request { url = url, body = "hello", headers = { ["X-Token"] = "t1" } })
      assert.equal(200, res.status)
      assert.equal("POST", res.headers["x-method"])
      assert.equal("t1", res.headers["X-GOT"])
      assert.equal("a, b", res.headers["set-thing"])
      assert.same({ "a", "b" }, res:header_all("Set-Thing"))
      assert.equal("hello|fixed", res:body())
      local parts, i = { "one ", "two ", "three" }, 0
      res = assert(http.request { url = url, method = "PUT", body = function()
        i = i + 1
        quench.sleep(0.01)                            -- a reader may wait
        return parts[i]
      end })
      assert.equal("PUT", res.headers["x-method"])
      assert.equal("one two three|chunked", res:body())
      stop()
    end))

    it("follows redirects up to opts.redirects, or returns the 3xx", T(function()
      local port, stop = serve(function(req, res)
        local n = tonumber(req.path:match("^/hop/(%d+)$"))
        if n and n > 0 then
          res:status(302)
          res:header("Location", "/hop/" .. (n - 1))
          return res:finish("moved")
        end
        res:finish("arrived " .. req.path)
      end)
      local base = ("http://127.0.0.1:%d"):format(port)
      local res = assert(http.request(base .. "/hop/3"))
      assert.equal(200, res.status)
      assert.equal("arrived /hop/0", res:body())
      assert.equal(base .. "/hop/0", res.url)
      res = assert(http.request { url = base .. "/hop/3", redirects = 0 })
      assert.equal(302, res.status)
      assert.equal("/hop/2", res.headers.location)
      assert.equal("moved", res:body())
      local none, msg, code = http.request { url = base .. "/hop/3", redirects = 2 }
      assert.is_nil(none)
      assert.equal("EREDIRECTS", code)
      assert.matches("^EREDIRECTS: ", msg)
      stop()
    end))

    it("streams a chunked response as it arrives (reader), with backpressure", T(function()
      local gate = quench.channel()
      local written, total = 0, 16 * 1024 * 1024
      local port, stop = serve(function(req, res)
        if req.path == "/lines" then
          res:write("first\n")
          gate:recv()                                 -- the client has read the first line
          res:write("second\nthird")
          return res:finish()
        end
        local chunk = ("x"):rep(64 * 1024)
        while written < total do
          res:write(chunk)
          written = written + #chunk
        end
        res:finish()
      end)
      local res = assert(http.request(("http://127.0.0.1:%d/lines"):format(port)))
      assert.is_nil(res.headers["content-length"])
      local r = res:reader()
      assert.equal("first", r:read("l"))             -- before the rest was even written
      gate:send(true)
      assert.equal("second\n", r:read("L"))
      assert.equal("third", r:read("a"))
      assert.is_nil(r:read_some())
      -- a reader that stops reading holds the server back
      local big = assert(http.request(("http://127.0.0.1:%d/big"):format(port)))
      local br = big:reader()
      assert.truthy(#br:read_some(1024) > 0)
      quench.sleep(0.5)
      assert.truthy(written < total, "the server wrote everything while nobody read")
      local n = 0
      while true do
        local s = br:read_some()
        if not s then break end
        n = n + #s
      end
      assert.truthy(n >= total - 1024)
      assert.equal(total, written)
      stop()
    end))

    it("keeps what a dropped body() or read received; one reader at a time", T(function()
      local port, stop = serve(function(_, res)
        res:write("part1 ")
        quench.sleep(0.4)
        res:write("part2 ")
        quench.sleep(0.4)
        res:finish("part3")
      end)
      local url = ("http://127.0.0.1:%d/"):format(port)
      local res = assert(http.request(url))
      assert.is_false((quench.timeout(0.2, res.body, res)))   -- dropped while waiting
      assert.equal("part1 part2 part3", res:body())
      res = assert(http.request(url))
      local r = res:reader()
      assert.is_false((quench.timeout(0.2, r.read, r, 12)))   -- "part1 " received, kept
      local other = quench.spawn(r.read, r, "a")
      quench.sleep(0.05)
      local ok, err = pcall(r.read, r, 100)              -- it must wait: the other waits
      assert.is_false(ok)
      assert.matches("being read by another task", err)
      assert.same({ true, "part1 part2 part3" }, { other:join() })
      stop()
    end))

    it("bounds a body by max_body, and times out by opts.timeout", T(function()
      local port, stop = serve(function(req, res)
        if req.path == "/slow" then quench.sleep(5) end
        res:finish(("z"):rep(1000))
      end)
      local base = ("http://127.0.0.1:%d"):format(port)
      local res = assert(http.request { url = base .. "/", max_body = 999 })
      local none, msg, code = res:body()
      assert.is_nil(none)
      assert.equal("EMSGSIZE", code)
      assert.matches("max_body", msg)
      local t0 = quench.now()
      none, msg, code = http.request { url = base .. "/slow", timeout = 0.3 }
      assert.is_nil(none)
      assert.is_nil(none)
      assert.equal("ETIMEDOUT", code, msg)
      assert.truthy(quench.now() - t0 < 3)
      none, msg, code = http.request { url = base .. "/slow", timeout = { connect = 1, total = 0.2 } }
      assert.is_nil(none)
      assert.equal("ETIMEDOUT", code, msg)
      stop()
    end))

    it("drops a request in flight at once: the server's handler is cancelled", T(function()
      local log = {}
      local port, stop = serve(function(req, res)
        if req.path == "/ok" then return res:finish("ok") end
        local ok, err = pcall(quench.sleep, 10)
        log[#log + 1] = not ok and quench.is_cancelled(err) and err.reason or "not cancelled"
        error(err, 0)
      end)
      local base = ("http://127.0.0.1:%d"):format(port)
      local ok, t = quench.timeout(0.3, http.request, base .. "/sleep")
      assert.is_false(ok)
      assert.truthy(quench.is_timeout(t))
      assert.truthy(until_true(5, function() return #log == 1 end))
      assert.same({ http.CLIENT_GONE }, log)
      -- a task aborted while its request waits
      local h = quench.spawn(http.request, base .. "/sleep")
      quench.sleep(0.1)
      h:abort()
      assert.truthy(until_true(5, function() return #log == 2 end))
      assert.equal(http.CLIENT_GONE, log[2])
      -- the runtime's next request works
      local res = assert(http.request(base .. "/ok"))
      assert.equal("ok", res:body())
      stop()
    end))

    it("closes a response mid-body: the connection closes, nothing comes after", T(function()
      local log, stream_started = {}, false
      local port, stop = serve(function(req, res)
        if req.path == "/ok" then return res:finish("ok") end
        stream_started = true
        local ok, err = pcall(function()
          while true do
            res:write(("y"):rep(16 * 1024))
            quench.sleep(0.01)
          end
        end)
        log[#log + 1] = ok and "ended" or (quench.is_cancelled(err) and err.reason or tostring(err))
        error(err, 0)
      end)
      local base = ("http://127.0.0.1:%d"):format(port)
      local res = assert(http.request(base .. "/stream"))
      local r = res:reader()
      assert.truthy(r:read_some(100))
      assert.truthy(stream_started)
      res:close()
      local none, _, code = r:read_some()
      assert.is_nil(none)
      assert.equal("ECANCELED", code)
      assert.truthy(until_true(5, function() return #log == 1 end))
      assert.is_not.equal("ended", log[1])           -- the server saw the connection go
      for _ = 1, 3 do                                -- fresh connections work
        local again = assert(http.request(base .. "/ok"))
        assert.equal("ok", again:body())
      end
      stop()
    end))
  end)

  describe("failures", function()
    it("bounds a server that never answers by quench.timeout; the next request works", T(function()
      local srv = assert(quench.tcp.listen("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local held = {}
      local acceptor = quench.spawn(function()
        while true do held[#held + 1] = srv:accept() end
      end)
      local ok = quench.timeout(0.3, http.request, ("http://127.0.0.1:%d/"):format(port))
      assert.is_false(ok)
      -- the client closed its connection: the server reads EOF
      assert.truthy(held[1])
      local okr, data = quench.timeout(3, held[1].read, held[1], "a")
      assert.truthy(okr)
      assert.matches("^GET / HTTP/1.1\r\n", data)
      acceptor:abort()
      for _, c in ipairs(held) do c:close() end
      srv:close()
      local port2, stop = serve(function(_, res) res:finish("fine") end)
      assert.equal("fine", assert(http.request(("http://127.0.0.1:%d/"):format(port2))):body())
      stop()
    end))

    it("drops a request by quench.timeout on the virtual clock, at the virtual deadline", function()
      -- the drop is quench's (its timer, the transfer's <close>), so it
      -- follows quench's clock: 30 virtual seconds pass at once, the
      -- transfer is removed, and the run ends with every curl handle,
      -- poll and timer closed (ASan and valgrind check the rest)
      quench.test(function()
        local srv = assert(quench.tcp.listen("127.0.0.1", 0))
        local _, port = srv:getsockname()
        local t0 = quench.now()
        local ok = quench.timeout(30, http.request, ("http://127.0.0.1:%d/"):format(port))
        assert.is_false(ok)
        assert.equal(30, quench.now() - t0)
        -- a select that picks another branch drops it the same way
        local which = quench.select(function()
          return http.request(("http://127.0.0.1:%d/"):format(port))
        end, quench.sleep_op(2))
        assert.equal(2, which)
        assert.equal(32, quench.now() - t0)
        srv:close()
      end)
    end)

    it("returns nil, msg, code for a refused connection", T(function()
      local none, msg, code = http.request(("http://127.0.0.1:%d/"):format(free_port()))
      assert.is_nil(none)
      assert.equal("ECONNREFUSED", code)
      assert.matches("^ECONNREFUSED: ", msg)
    end))

    it("raises naming the function and the argument for bad input", T(function()
      local function raises(pat, arg)
        local ok, err = pcall(http.request, arg)
        assert.is_false(ok)
        assert.matches(pat, tostring(err))
      end
      raises("bad argument #1 to 'quench.http.request' %(a URL or a table expected", 42)
      raises("bad argument #1 to 'quench.http.request' %(opts.url: No host part", "http://")
      raises("opts.url: an http:// or https:// URL expected", "ftp://example.org/")
      raises("opts.url: a string expected", {})
      raises("unknown option 'bogus'", { url = "http://127.0.0.1/", bogus = 1 })
      raises("opts.method", { url = "http://127.0.0.1/", method = "GE T" })
      raises("opts.headers", { url = "http://127.0.0.1/", headers = { ["X-A"] = "a\r\nX-B: b" } })
      raises("opts.headers", { url = "http://127.0.0.1/", headers = { ["bad name"] = "v" } })
      raises("opts.body", { url = "http://127.0.0.1/", body = 42 })
      raises("opts.timeout", { url = "http://127.0.0.1/", timeout = -1 })
      raises("opts.timeout", { url = "http://127.0.0.1/", timeout = { read = 1 } })
      raises("opts.redirects", { url = "http://127.0.0.1/", redirects = 1.5 })
      raises("opts.verify", { url = "http://127.0.0.1/", verify = "no" })
      raises("opts.max_body", { url = "http://127.0.0.1/", max_body = -1 })
    end))
  end)

  describe("against nginx", function()
    local pki, dir
    setup(function()
      pki = pki_helper.make()
      dir = tmpdir()
    end)
    teardown(function()
      pki_helper.remove(pki)
      if dir then os.execute("rm -rf '" .. dir .. "'") end
    end)

    -- nginx on two free ports (plain, TLS with `cert`), files from dir/www.
    local function nginx(cert)
      assert(os.execute("command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx"),
             "nginx is needed by this spec (Debian: nginx; scripts/deps.sh)")
      local bin = os.execute("test -x /usr/sbin/nginx") and "/usr/sbin/nginx" or "nginx"
      os.execute("mkdir -p '" .. dir .. "/www' '" .. dir .. "/logs'")
      write(dir .. "/www/index.html", "hello from nginx\n")
      write(dir .. "/www/big.bin", ("n"):rep(300000))
      -- run as root, nginx's workers are `nobody`: they must read www/
      os.execute("chmod 755 '" .. dir .. "' '" .. dir .. "/www' && chmod 644 '" .. dir .. "/www/'*")
      -- A port picked free can be taken before nginx binds it (another
      -- program on the machine): nginx then exits, and it is started again
      -- on fresh ports. Its error log says why when every try failed.
      local why
      for _ = 1, 3 do
        local plain, tls, mtls = pki_helper.free_ports(quench, 3)
        os.remove(dir .. "/logs/error.log")
        write(dir .. "/nginx.conf", ([[
pid %s/nginx.pid;
error_log %s/logs/error.log;
master_process off; worker_processes 1;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %s/tmp_body; proxy_temp_path %s/tmp_proxy;
  fastcgi_temp_path %s/tmp_fcgi; uwsgi_temp_path %s/tmp_uwsgi; scgi_temp_path %s/tmp_scgi;
  server {
    listen 127.0.0.1:%d;
    listen 127.0.0.1:%d ssl http2;
    ssl_certificate %s;
    ssl_certificate_key %s;
    root %s/www;
    location = /moved { return 301 /index.html; }
  }
  server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_client_certificate %s;
    ssl_verify_client on;
    location / { return 200 "client: $ssl_client_s_dn\n"; }
  }
}
]]):format(dir, dir, dir, dir, dir, dir, dir, plain, tls, cert.cert, cert.key, dir,
             mtls, cert.cert, cert.key, pki.ca.cert))
        local p = spawn(bin, { "-p", dir, "-c", dir .. "/nginx.conf", "-g", "daemon off;" })
        local ok, err = pcall(function()
          for _, port in ipairs({ plain, tls, mtls }) do
            pki_helper.wait_port(quench, port, 10, p)
          end
        end)
        if ok then return p, plain, tls, mtls end
        p:close()
        local log = io.open(dir .. "/logs/error.log")
        why = tostring(err) .. (log and ("; nginx's error log: " .. log:read("a")) or "")
        if log then log:close() end
      end
      error(why)
    end

    it("GETs plain and over TLS (verified against the test CA), with redirects", T(function()
      local _p <close>, plain, tls = nginx(pki.server)
      local res = assert(http.request(("http://127.0.0.1:%d/"):format(plain)))
      assert.equal(200, res.status)
      assert.equal("hello from nginx\n", res:body())
      assert.matches("^nginx", res.headers.server)
      res = assert(http.request(("http://127.0.0.1:%d/moved"):format(plain)))
      assert.equal("hello from nginx\n", res:body())
      local big = assert(http.request(("http://127.0.0.1:%d/big.bin"):format(plain)))
      assert.equal(300000, #big:body())
      res = assert(http.request { url = ("https://localhost:%d/"):format(tls),
                                  cafile = pki.ca.cert })
      assert.equal(200, res.status)
      assert.equal("hello from nginx\n", res:body())
      res = assert(http.request { url = ("https://127.0.0.1:%d/big.bin"):format(tls),
                                  cafile = pki.ca.cert, http_version = "2" })
      assert.equal("2", res.version)
      assert.equal(300000, #res:body())
      res = assert(http.request { url = ("https://127.0.0.1:%d/"):format(tls),
                                  cafile = pki.ca.cert, http_version = "1.1" })
      assert.equal("1.1", res.version)
      assert.equal("hello from nginx\n", res:body())
    end))

    it("sends a client certificate (certificate, key) to a server that asks for one", T(function()
      local _p <close>, _, _, mtls = nginx(pki.server)
      local url = ("https://localhost:%d/"):format(mtls)
      local res = assert(http.request { url = url, cafile = pki.ca.cert })
      assert.equal(400, res.status)                   -- nginx: no required SSL certificate
      res = assert(http.request { url = url, cafile = pki.ca.cert,
                                  certificate = pki.client.cert, key = pki.client.key })
      assert.equal(200, res.status)
      assert.equal("client: CN=quench client\n", res:body())
    end))

    it("refuses a self-signed certificate unless verify = false", T(function()
      local _p <close>, _, tls = nginx(pki.self)
      local url = ("https://localhost:%d/"):format(tls)
      local none, msg, code = http.request(url)
      assert.is_nil(none)
      assert.equal("ETLS_VERIFY", code, msg)
      none, msg, code = http.request { url = url, cafile = pki.ca.cert }
      assert.is_nil(none)
      assert.equal("ETLS_VERIFY", code, msg)
      local res = assert(http.request { url = url, verify = false })
      assert.equal("hello from nginx\n", res:body())
      res = assert(http.request { url = url, cafile = pki.self.cert })   -- trusted as its own CA
      assert.equal(200, res.status)
    end))
  end)
end)
