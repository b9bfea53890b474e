-- HTTP server (issue 18): quench.http against real clients (curl, Python's
-- http.client, wrk) and raw sockets, on loopback and the real clock (I/O).
-- Every server is started by its spec on a free port and stopped by it;
-- a missing client binary fails the spec loudly.
local quench = require "quench"
local http = quench.http

local function T(fn) return quench.test(fn, { clock = "real" }) end

local PID = io.open("/proc/self/stat"):read("l"):match("^%d+")

local function open_fds()
  local n = 0
  local p <close> = io.popen("ls /proc/" .. PID .. "/fd")
  for _ in p:lines() do n = n + 1 end
  return n
end

-- Start a server with handler on 127.0.0.1:0; returns the server, its port
-- and a function that stops it (grace 0) and waits for serve to return.
local function start(handler, opts)
  local srv = assert(http.listen("127.0.0.1", 0, opts))
  local _, port = srv:getsockname()
  local h = quench.spawn(srv.serve, srv, handler)
  return srv, port, function(grace)
    srv:stop(grace or 0)
    assert.same({ true, true }, { h:join() })
  end
end

-- Run a program to its end: exit status, stdout, stderr.
local function run(file, args, input)
  local p <close> = assert(quench.process.spawn(file, {
    args = args, stdout = "pipe", stderr = "pipe", stdin = input and "pipe" or "ignore",
    env = { LD_PRELOAD = false, ASAN_OPTIONS = false } }),          -- the clients are not ours to check
    file .. " is needed by this spec (Debian package)")
  if input then
    p.stdin:write(input)
    p.stdin:close()
  end
  local out, err
  quench.join_all(function() out = p.stdout:read("a") end, function() err = p.stderr:read("a") end)
  local status = p:wait()
  return status, out, err
end

-- Send raw bytes, then read everything until the server closes (or 5 s).
local function raw(port, data, keep_open)
  local c <close> = assert(quench.tcp.connect("127.0.0.1", port))
  c:write(data)
  if keep_open == "shutdown" then c:shutdown() end
  local ok, out = quench.timeout(5, c.read, c, "a")
  assert(ok, "the server did not close the connection within 5 s")
  return out
end

-- A handler answering with the request's path.
local function echo_path(req, res) res:finish(req.path) end

-- Serve handler, send data over one raw connection, stop: what the
-- client read.
local function serve_raw(handler, data)
  local _, port, stop = start(handler)
  local out = raw(port, data)
  stop()
  return out
end

-- The descriptors open once a server has answered one request (its
-- runtime's lazily made ones included): what must be open again later.
local function baseline(port)
  raw(port, "GET /warm-up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
  return open_fds()
end

-- Whether the open descriptors come back to `fds` within 3 s (a closed
-- connection's lingering close ends when its client has closed).
local function fds_back_to(fds)
  return quench.timeout(3, function()
    while open_fds() > fds do quench.sleep(0.01) end
  end)
end

local function status_of(resp) return tonumber(resp:match("^HTTP/1%.1 (%d%d%d)")) end

local function count(s, pat)
  local n = 0
  for _ in s:gmatch(pat) do n = n + 1 end
  return n
end

local function hello(req, res)
  res:header("Content-Type", "text/plain")
  res:finish("hello " .. req.method .. " " .. req.path .. "\n")
end

describe("quench.http server", function()
  describe("res:header", function()
    it("checks a field (a token name, a value without CR, LF, NUL) and takes the server's own", T(function()
      local errs = {}
      local _, port, stop = start(function(_, res)
        for i, args in ipairs {
          { "Bad Name", "v" }, { "", "v" }, { 42, "v" }, { "X(y)", "v" }, { "X-A", "a\r\nb" },
          { "X-A", "a\nb" }, { "X-A", "a\0b" }, { "X-A", {} }, { "Content-Length", "12x" },
          { "transfer-encoding", "chunked" },
        } do
          local ok, e = pcall(res.header, res, args[1], args[2])
          errs[i] = not ok and (e:match("Transfer%-Encoding is the server's") or e:match("%((.-)%)$"))
        end
        res:header("X-Num", 7):header("x-odd!#$%&'*+-.^_`|~1", "v w"):header("content-length", " 5 ")
        res:header("DATE", "Thu, 01 Jan 2026 00:00:00 GMT"):header("connection", "Close")
        res:finish("hello")
      end)
      local out = raw(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      stop()
      local name, value = "a header name expected", "a string without CR, LF or NUL expected"
      assert.same({ name, name, name, name, value, value, value, value, "Content-Length must be digits",
                    "Transfer-Encoding is the server's" }, errs)
      assert.equal(200, status_of(out))
      assert.truthy(out:find("\r\nX-Num: 7\r\n", 1, true))
      assert.truthy(out:find("\r\nx-odd!#$%&'*+-.^_`|~1: v w\r\n", 1, true))
      assert.truthy(out:find("\r\nContent-Length: 5\r\n", 1, true))
      assert.truthy(out:find("\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n", 1, true))
      assert.equal(1, count(out, "\r\nDate: "))
      assert.truthy(out:find("\r\nConnection: close\r\n", 1, true))   -- and it closed: raw returned
      assert.equal("hello", out:match("\r\n\r\n(.*)$"))
    end))
  end)

  describe("with curl", function()
    it("answers a GET with its query, headers and peer", T(function()
      local seen
      local _, port, stop = start(function(req, res)
        seen = { method = req.method, path = req.path, query = req.query, x = req.headers["X-Test"],
                 xs = req:header_all("x-test"), args = req.args, version = req.version,
                 peer = req.peer.host, target = req.target }
        res:header("X-Reply", "yes")
        res:finish("ok\n")
      end)
      local st, out = run("curl", { "-s", "-i", "-H", "X-Test: a", "-H", "x-test: b",
                                    "http://127.0.0.1:" .. port .. "/p/q?a=1&b=x%20y&a=2" })
      stop()
      assert.equal(0, st)
      assert.equal(200, status_of(out))
      assert.truthy(out:find("X-Reply: yes\r\n", 1, true))
      assert.truthy(out:find("Content-Length: 3\r\n", 1, true))
      assert.equal("ok\n", out:match("\r\n\r\n(.*)$"))
      assert.same({ method = "GET", path = "/p/q", query = "a=1&b=x%20y&a=2", x = "a, b",
                    xs = { "a", "b" }, args = { a = { "1", "2" }, b = "x y" }, version = "1.1",
                    peer = "127.0.0.1", target = "/p/q?a=1&b=x%20y&a=2" }, seen)
    end))

    it("keeps a connection alive across requests", T(function()
      local _, port, stop = start(hello)
      local url = "http://127.0.0.1:" .. port
      local st, out, err = run("curl", { "-s", "-v", url .. "/a", url .. "/b", url .. "/c" })
      stop()
      assert.equal(0, st)
      assert.equal("hello GET /a\nhello GET /b\nhello GET /c\n", out)
      assert.equal(2, count(err, "Re%-using existing connection"))
    end))

    it("takes a chunked upload and answers it", T(function()
      local trailers
      local _, port, stop = start(function(req, res)
        local body = assert(req:body())
        trailers = req.trailers
        res:finish(#body .. ":" .. body:sub(1, 5))
      end)
      local data = string.rep("0123456789", 10000)
      local st, out = run("curl", { "-s", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-",
                                    "http://127.0.0.1:" .. port .. "/up" }, data)
      stop()
      assert.equal(0, st)
      assert.equal("100000:01234", out)
      assert.same({}, trailers)
    end))

    it("answers an HTTP/1.0 client and closes", T(function()
      local _, port, stop = start(function(_, res) res:write("a"); res:finish("b") end)
      local st, out = run("curl", { "-s", "-i", "--http1.0", "http://127.0.0.1:" .. port .. "/" })
      stop()
      assert.equal(0, st)
      assert.truthy(out:find("Connection: close\r\n", 1, true))
      assert.falsy(out:find("chunked", 1, true))      -- 1.0 has no chunked coding
      assert.equal("ab", out:match("\r\n\r\n(.*)$"))
    end))

    it("answers HEAD with the length of the body it does not send", T(function()
      local _, port, stop = start(function(_, res) res:finish("twelve bytes") end)
      local st, out = run("curl", { "-s", "-I", "http://127.0.0.1:" .. port .. "/" })
      stop()
      assert.equal(0, st)
      assert.truthy(out:find("Content-Length: 12\r\n", 1, true))
      assert.equal("", out:match("\r\n\r\n(.*)$"))
    end))

    it("sends 100 Continue when the handler reads the body", T(function()
      local _, port, stop = start(function(req, res) res:finish(assert(req:body())) end)
      local st, out, err = run("curl", { "-s", "-v", "-H", "Expect: 100-continue", "--data-binary",
                                         "payload", "http://127.0.0.1:" .. port .. "/" })
      stop()
      assert.equal(0, st)
      assert.equal("payload", out)
      assert.truthy(err:find("HTTP/1.1 100 Continue", 1, true))
    end))

    it("streams a chunked response", T(function()
      local _, port, stop = start(function(_, res)
        res:header("Content-Type", "text/plain")
        for i = 1, 5 do res:write("part" .. i .. "\n") end
        res:finish()
      end)
      local st, out = run("curl", { "-s", "-i", "http://127.0.0.1:" .. port .. "/" })
      stop()
      assert.equal(0, st)
      assert.truthy(out:find("Transfer-Encoding: chunked\r\n", 1, true))
      assert.equal("part1\npart2\npart3\npart4\npart5\n", out:match("\r\n\r\n(.*)$"))
    end))
  end)

  it("serves Python's http.client: keep-alive, bodies, 204, 304, chunked replies", T(function()
    local _, port, stop = start(function(req, res)
      if req.path == "/204" then return res:status(204):finish() end
      if req.path == "/304" then return res:status(304):finish() end
      if req.path == "/chunked" then res:write("x"); res:write("y"); return res:finish() end
      local body = assert(req:body())
      res:header("Set-Cookie", "a=1"):header("Set-Cookie", "b=2")
      res:finish(req.method .. ":" .. body)
    end)
    local script = [[
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
out = []
c.request("POST", "/x", body=b"abc"); r = c.getresponse()
out.append("%d %s %s" % (r.status, r.read().decode(), r.headers.get_all("Set-Cookie")))
c.request("GET", "/204"); r = c.getresponse(); out.append("%d [%s]" % (r.status, r.read().decode()))
c.request("GET", "/304"); r = c.getresponse(); out.append("%d [%s]" % (r.status, r.read().decode()))
c.request("GET", "/chunked"); r = c.getresponse(); out.append("%d %s" % (r.status, r.read().decode()))
c.request("PUT", "/y", body=iter([b"ab", b"cd"]), encode_chunked=True); r = c.getresponse()
out.append("%d %s" % (r.status, r.read().decode()))
print("|".join(out))
]]
    local st, out, err = run("python3", { "-c", script, tostring(port) })
    stop()
    assert.equal(0, st, err)
    assert.equal("200 POST:abc ['a=1', 'b=2']|204 []|304 []|200 xy|200 PUT:abcd\n", out)
  end))

  it("keeps serving under wrk, without an error", T(function()
    local _, port, stop = start(function(_, res) res:finish("hello\n") end)
    local st, out = run("wrk", { "-t1", "-c16", "-d1s", "http://127.0.0.1:" .. port .. "/" })
    stop()
    assert.equal(0, st)
    local n = tonumber(out:match("(%d+) requests in"))
    assert.truthy(n and n > 100, out)
    assert.falsy(out:find("Socket errors", 1, true), out)
    assert.falsy(out:find("Non%-2xx"), out)
  end))

  describe("with raw sockets", function()
    it("makes a request's fields when first read, in any order, and keeps the user's own", T(function()
      local seen = {}
      local _, port, stop = start(function(req, res)
        local q = req.query                         -- before path: one split of the target makes both
        req.mine = "kept"                           -- a field of the user's own
        seen[#seen + 1] = { q, req.path, req.method, req.target, req.mine, req.nosuch,
                            rawget(req, "path"), req.method == rawget(req, "method") }
        res:finish()
      end)
      local out = raw(port, "POST /a/b?x=1&y HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n" ..
                            "GET /plain HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
      stop()
      assert.equal(2, count(out, "HTTP/1%.1 200"))
      assert.same({ "x=1&y", "/a/b", "POST", "/a/b?x=1&y", "kept", nil, "/a/b", true }, seen[1])
      assert.same({ "", "/plain", "GET", "/plain", "kept", nil, "/plain", true }, seen[2])
    end))

    it("raises res:finish's misuse at the caller's line", T(function()
      local errs = {}
      local _, port, stop = start(function(_, res)
        errs[1] = select(2, pcall(function() res:finish({}) end))
        res:finish("ok")
        errs[2] = select(2, pcall(function() res:finish("again") end))
      end)
      local out = raw(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      stop()
      assert.equal("ok", out:match("\r\n\r\n(.*)$"))
      assert.matches("http_spec%.lua:%d+: bad argument #1 to 'quench%.http%.response:finish' "
                     .. "%(string expected, got table%)", errs[1])
      assert.matches("http_spec%.lua:%d+: quench%.http%.response:finish: the response is finished already",
                     errs[2])
    end))

    it("answers pipelined requests in order", T(function()
      local _, port, stop = start(function(req, res)
        if req.path == "/slow" then quench.sleep(0.05) end
        res:finish(req.path .. "\n")
      end)
      local out = raw(port, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n" ..
                            "POST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" ..
                            "GET /4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      stop()
      local paths = {}
      for body in out:gmatch("\r\n\r\n(/%w+)\n") do paths[#paths + 1] = body end
      assert.same({ "/slow", "/2", "/3", "/4" }, paths)
    end))

    -- each answer is a head and a 2 MiB body handed to finish at once:
    -- assembled past the 16 KiB stack buffer, and written while earlier
    -- answers still fill the queue (the head writer hands the bytes back
    -- and the handler waits for room); with a header field (the head made
    -- in Lua) and without (a plain finish, made in C)
    for _, plain in ipairs({ false, true }) do
      it("answers pipelined requests with large bodies, in order, to a client that reads late ("
         .. (plain and "plain finish" or "with a header") .. ")", T(function()
        local size = 2 * 1024 * 1024
        local _, port, stop = start(function(req, res)
          if not plain then res:header("X-Path", req.path) end
          res:finish(req.path:sub(2, 2):rep(size))
        end)
        local c <close> = assert(quench.tcp.connect("127.0.0.1", port))
        c:write("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n" ..
                "GET /c HTTP/1.1\r\nHost: x\r\n\r\nGET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        quench.sleep(0.3)                         -- the server fills its queue meanwhile
        local ok, out = quench.timeout(20, c.read, c, "a")
        assert(ok, "the server did not close the connection within 20 s")
        stop()
        local pos, seen = 1, {}
        for _ = 1, 4 do
          local hs, he = out:find("\r\n\r\n", pos, true)
          assert.truthy(hs)
          local head = out:sub(pos, hs - 1)
          assert.matches("^HTTP/1.1 200 OK\r\n", head)
          local len = tonumber(head:match("Content%-Length: (%d+)"))
          assert.equal(size, len)
          local body = out:sub(he + 1, he + len)
          local path = plain and "/" .. body:sub(1, 1) or head:match("X%-Path: (/%w)")
          assert.equal(path:sub(2, 2):rep(size), body)
          seen[#seen + 1] = path
          pos = he + len + 1
        end
        assert.same({ "/a", "/b", "/c", "/d" }, seen)
      end))
    end

    -- Each malformed request: the status it gets, then the connection is
    -- closed (raw() returns only then) and the server still serves.
    local corpus = {
      { "a request line without a version", "GET /\r\n\r\n", 400 },
      { "a bad version", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400 },
      { "spaces in the target", "GET / x / HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
      { "a control byte in the method", "G\1T / HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
      { "no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400 },
      { "two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },
      { "obsolete header folding", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n", 400 },
      { "a space before the colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400 },
      { "a field without a colon", "GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n", 400 },
      { "Content-Length and Transfer-Encoding",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400 },
      { "two different Content-Lengths",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400 },
      { "a negative Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400 },
      { "a Content-Length with letters", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400 },
      { "an overflowing Content-Length",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400 },
      { "an unknown transfer coding",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501 },
      { "chunked in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400 },
      { "an invalid chunk size",
        "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400 },
      { "a chunk size too large for its body",
        "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nab", 400 },
      { "a body over max_body", "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n", 413 },
      { "a chunked body over max_body",
        "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" ..
        "400\r\n" .. string.rep("a", 1024) .. "\r\n400\r\n" .. string.rep("a", 1024) ..
        "\r\n0\r\n\r\n", 413 },
      { "a request line over max_line", "GET /" .. string.rep("a", 300) .. " HTTP/1.1\r\nHost: x\r\n\r\n",
        414 },
      { "a head over max_head", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " .. string.rep("b", 600) .. "\r\n\r\n",
        431 },
      { "too many fields", "GET / HTTP/1.1\r\nHost: x\r\n" .. string.rep("X-A: 1\r\n", 12) .. "\r\n", 431 },
    }
    for _, case in ipairs(corpus) do
      it("answers " .. case[1] .. " with " .. case[3] .. ", closes, and serves on", T(function()
        local errors = {}
        local _, port, stop = start(function(req, res)
          if req.path == "/body" then
            local b, msg = req:body()
            if not b then errors[#errors + 1] = msg; return end
          end
          res:finish("fine")
        end, { max_line = 200, max_head = 512, max_headers = 10, max_body = 1500,
               on_error = function(e) errors[#errors + 1] = tostring(e) end })
        local fds = baseline(port)
        local out = raw(port, case[2])
        assert.equal(case[3], status_of(out), out)
        assert.truthy(out:find("Connection: close\r\n", 1, true))
        assert.equal(1, count(out, "HTTP/1%.1 "))     -- nothing else answered
        local again = raw(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        local released = fds_back_to(fds)              -- while the server still serves
        stop()
        assert.truthy(released, "a descriptor is still held")
        assert.equal("fine", again:match("\r\n\r\n(.*)$"))
        for _, e in ipairs(errors) do assert.falsy(e:find("handler error")) end
      end))
    end

    it("closes at an early EOF inside a head, answering nothing", T(function()
      local _, port, stop = start(hello)
      local fds = baseline(port)
      local out = raw(port, "GET / HTTP/1.1\r\nHost: x\r\nX-Half", "shutdown")
      local again = raw(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      local released = fds_back_to(fds)
      stop()
      assert.truthy(released, "a descriptor is still held")
      assert.equal("", out)
      assert.equal(200, status_of(again))
    end))

    it("cuts a slowloris client at the header timeout with 408", T(function()
      local _, port, stop = start(hello, { header_timeout = 0.3 })
      local fds = baseline(port)
      local c <close> = assert(quench.tcp.connect("127.0.0.1", port))
      local t0 = quench.now()
      local out = {}
      local ok = quench.timeout(3, function()
        for _, piece in ipairs { "GET / HT", "TP/1.1\r\n", "Host: x\r\n", "X-1: a\r\n", "X-2: b\r\n" } do
          if not c:write(piece) then break end
          quench.sleep(0.1)
        end
        out[1] = c:read("a")
      end)
      c:close()
      local released = fds_back_to(fds)
      stop()
      assert.truthy(ok)
      assert.truthy(released, "a descriptor is still held")
      assert.equal(408, status_of(out[1]))
      assert.truthy(quench.now() - t0 < 2)
    end))

    it("closes an idle keep-alive connection after keepalive_timeout", T(function()
      local _, port, stop = start(hello, { keepalive_timeout = 0.2 })
      local c <close> = assert(quench.tcp.connect("127.0.0.1", port))
      c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      local ok, rest = quench.timeout(3, c.read, c, "a")   -- the response, then EOF
      stop()
      assert.truthy(ok)
      assert.equal(200, status_of(rest))
    end))

    -- Read one response to a keep-alive request for "/" from hello.
    local function read_hello(c)
      local lines = {}
      repeat lines[#lines + 1] = c:read("l") until lines[#lines] == "\r" or lines[#lines] == nil
      local head = table.concat(lines, "\n")
      local len = tonumber(head:match("Content%-Length: (%d+)"))
      return head, len and c:read(len)
    end

    it("gives a new connection no task while its head comes, and closes it at header_timeout",
       T(function()
      local _, port, stop = start(hello, { header_timeout = 0.3 })
      quench.sleep(0.05)
      local before = #quench.tasks()                  -- the server's own tasks
      local c <close> = assert(quench.tcp.connect("127.0.0.1", port))
      local d <close> = assert(quench.tcp.connect("127.0.0.1", port))
      d:write("GET / HTTP/1.1\r\nHo")                -- part of a head
      quench.sleep(0.1)
      assert.equal(before, #quench.tasks())           -- watched from C, no task each
      local ok, rest = quench.timeout(3, c.read, c, "a")
      assert.truthy(ok)
      assert.equal("", rest)                          -- nothing came: closed without an answer
      local ok2, out = quench.timeout(3, d.read, d, "a")
      assert.truthy(ok2)
      assert.equal(408, status_of(out))               -- part of a head: 408
      stop()
    end))

    it("keeps an idle keep-alive connection without a task, and serves it again", T(function()
      local _, port, stop = start(hello, { keepalive_timeout = 10, max_requests = 3 })
      quench.sleep(0.05)
      local before = #quench.tasks()                  -- the server's own tasks
      local c <close> = assert(quench.tcp.connect("127.0.0.1", port))
      c:write("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
      local head, body = read_hello(c)
      assert.equal(200, status_of(head))
      assert.equal("hello GET /a\n", body)
      quench.sleep(0.05)
      assert.equal(before, #quench.tasks())           -- parked: no task of its own
      c:write("GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
      head, body = read_hello(c)
      assert.equal("hello GET /b\n", body)
      assert.falsy(head:find("Connection: close", 1, true))
      quench.sleep(0.05)
      assert.equal(before, #quench.tasks())           -- parked again
      -- max_requests counts every request of the connection: this is the third
      c:write("GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
      head, body = read_hello(c)
      assert.equal("hello GET /c\n", body)
      assert.truthy(head:find("Connection: close", 1, true))
      assert.equal("", c:read("a"))
      stop()
    end))

    it("closes a parked connection at keepalive_timeout, or answers 408 to a head cut short", T(function()
      local _, port, stop = start(hello, { keepalive_timeout = 0.4, idle_park = 0.05 })
      local c <close> = assert(quench.tcp.connect("127.0.0.1", port))
      local d <close> = assert(quench.tcp.connect("127.0.0.1", port))
      c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      d:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.equal(200, status_of(read_hello(c)))
      assert.equal(200, status_of(read_hello(d)))
      local t0 = quench.now()
      quench.sleep(0.2)
      d:write("GET / HTTP/1.1\r\nHo")                -- parked by now: the lot watches it
      local ok, rest = quench.timeout(3, c.read, c, "a")
      assert.truthy(ok)
      assert.equal("", rest)                          -- closed, nothing sent
      assert.truthy(quench.now() - t0 >= 0.3)
      local ok2, out = quench.timeout(3, d.read, d, "a")
      assert.truthy(ok2)
      assert.equal(408, status_of(out))
      stop()
    end))

    it("counts out a parked connection whose client leaves (max_connections frees up)", T(function()
      local _, port, stop = start(hello, { keepalive_timeout = 30, idle_park = 0.05, max_connections = 1 })
      local c = assert(quench.tcp.connect("127.0.0.1", port))
      c:write("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.equal(200, status_of(read_hello(c)))
      quench.sleep(0.2)                               -- parked
      c:close()                                       -- gone while parked
      local d <close> = assert(quench.tcp.connect("127.0.0.1", port))
      d:write("GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
      local ok, head, body = quench.timeout(3, read_hello, d)
      assert.truthy(ok)                               -- served: the slot was given back
      assert.equal(200, status_of(head))
      assert.equal("hello GET /2\n", body)
      stop()
    end))

    it("stop() closes parked connections at once", T(function()
      local srv, port = start(hello, { keepalive_timeout = 30, idle_park = 0.05 })
      local c <close> = assert(quench.tcp.connect("127.0.0.1", port))
      c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.equal(200, status_of(read_hello(c)))
      quench.sleep(0.2)
      local t0 = quench.now()
      assert.truthy(srv:stop(10))
      assert.truthy(quench.now() - t0 < 2)
      assert.equal("", c:read("a"))
    end))

    it("reads a 100-continue body only after sending 100 Continue", T(function()
      local _, port, stop = start(function(req, res) res:finish("got " .. assert(req:body())) end)
      local c <close> = assert(quench.tcp.connect("127.0.0.1", port))
      c:write("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
      assert.equal("HTTP/1.1 100 Continue\r", c:read("l"))
      assert.equal("\r", c:read("l"))
      c:write("body")
      local head = {}
      repeat head[#head + 1] = c:read("l") until head[#head] == "\r"
      assert.equal("got body", c:read(8))
      -- the body was asked for and read: the connection stays open
      assert.falsy(table.concat(head, "\n"):find("Connection: close", 1, true))
      c:write("GET /again HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
      assert.equal(200, status_of(read_hello(c)))
      stop()
    end))

    it("closes after a plain finish that never asked for a 100-continue body", T(function()
      local out = serve_raw(function(_, res) res:finish("no") end,
                            "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
      assert.equal(200, status_of(out))
      assert.falsy(out:find("100 Continue", 1, true))
      assert.truthy(out:find("Connection: close\r\n", 1, true))
      assert.equal("no", out:match("\r\n\r\n(.*)$"))
    end))

    it("closes instead of reading a 100-continue body the handler never asked for", T(function()
      local out = serve_raw(function(_, res) res:status(403):finish("no") end,
                            "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
      assert.equal(403, status_of(out))
      assert.falsy(out:find("100 Continue", 1, true))
      assert.truthy(out:find("Connection: close\r\n", 1, true))
    end))

    it("skips a body the handler did not read and serves the next request", T(function()
      local out = serve_raw(echo_path,
                            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" ..
                            "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" ..
                            "3\r\nabc\r\n0\r\n\r\n" ..
                            "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      assert.equal(3, count(out, "HTTP/1%.1 200"))
      assert.truthy(out:find("/c$"))
    end))

    it("frames each request of a reused connection by its own head (HEAD, GET; 1.0, 1.1)", T(function()
      local out = serve_raw(echo_path,
                            "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n" ..
                            "GET /b HTTP/1.1\r\nHost: x\r\n\r\n" ..
                            "GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" ..
                            "GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      assert.equal(4, count(out, "HTTP/1%.1 200"))
      assert.falsy(out:find("/a", 1, true))          -- no body for HEAD
      assert.truthy(out:find("\r\n\r\n/b", 1, true))   -- but one for the GET after it
      assert.equal(1, count(out, "Connection: keep%-alive"))   -- said to the 1.0 client only
      assert.truthy(out:find("Connection: keep%-alive\r\n\r\n/cHTTP/1%.1 200"))
      assert.truthy(out:find("Connection: close\r\n\r\n/d$"))
    end))

    it("gives a handler the body through a reader, in the stream read formats, and the trailers", T(function()
      local got
      local _, port, stop = start(function(req, res)
        local r = req:reader()
        got = { r:read("l"), r:read(3), r:read("L"), r:read("a"), r:read("a"), r:read("l") }
        got.trailers = req.trailers
        res:finish("ok")
      end)
      local out = raw(port, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" ..
                            "Connection: close\r\n\r\n" ..
                            "5\r\nline1\r\n4;ext=1\r\n\nabc\r\n6\r\ndef\nxy\r\n0\r\nX-Sum: 42\r\n\r\n")
      stop()
      assert.equal(200, status_of(out))
      assert.same({ "line1", "abc", "def\n", "xy", "", nil, trailers = { ["x-sum"] = "42" } }, got)
    end))

    it("answers a handler error with 500 and reports it, then serves on", T(function()
      local reported = {}
      local _, port, stop = start(function(req, res)
        if req.path == "/boom" then error("boom") end
        res:finish("fine")
      end, { on_error = function(e, req) reported[#reported + 1] = req.path .. " " .. tostring(e) end })
      local out = raw(port, "GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
      local again = raw(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      stop()
      assert.equal(500, status_of(out))
      assert.equal(1, #reported)
      assert.truthy(reported[1]:find("^/boom .*boom"))
      assert.truthy(reported[1]:find("stack traceback:", 1, true))   -- where the handler raised
      assert.equal("fine", again:match("\r\n\r\n(.*)$"))
    end))

    it("closes a connection whose handler failed after the head was sent", T(function()
      local _, port, stop = start(function(_, res)
        res:write("partial")
        error("late")
      end, { on_error = function() end })
      local out = raw(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      stop()
      assert.equal(200, status_of(out))
      assert.falsy(out:find("0\r\n\r\n", 1, true))    -- no last chunk: the client sees it cut
    end))
  end)

  describe("cancellation", function()
    it("cancels the handler when its client goes away; its <close>s and defers run", T(function()
      local log = {}
      local tx, rx = quench.oneshot()
      local _, port, stop = start(function(req, res)
        if req.path == "/warm-up" then return res:finish() end
        local _g <close> = quench.guard(function() log[#log + 1] = "close" end)
        quench.defer(function() log[#log + 1] = "defer" end)
        tx:send(true)
        local ok, err = pcall(quench.sleep, 10)
        log[#log + 1] = not ok and quench.is_cancelled(err) and err.reason or "not cancelled"
        error(err, 0)
        res:finish("never")
      end)
      local fds = baseline(port)
      do
        local c <close> = assert(quench.tcp.connect("127.0.0.1", port))
        c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        rx:recv()
      end                                              -- the client closes here
      local ok = quench.timeout(3, function()
        while #log < 3 do quench.sleep(0.01) end
      end)
      stop()
      assert.truthy(ok)
      assert.same({ http.CLIENT_GONE, "close", "defer" }, log)
      assert.truthy(open_fds() <= fds)   -- no descriptor left behind
    end))

    it("cancels a handler reading the body when the client goes away mid-body", T(function()
      local tx, rx = quench.oneshot()
      local _, port, stop = start(function(req, res)
        if req.path == "/warm-up" then return res:finish() end
        local ok, a, b = pcall(req.body, req)
        tx:send({ ok, ok and tostring(a) or (quench.is_cancelled(a) and "cancelled" or tostring(a)), b })
      end)
      local fds = baseline(port)
      do
        local c <close> = assert(quench.tcp.connect("127.0.0.1", port))
        c:write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")
        quench.sleep(0.05)
      end
      local got = rx:recv()
      stop()
      -- either the read saw the end first, or the cancel came first: never a body
      assert.truthy((got[1] and got[2] == "nil") or got[2] == "cancelled", tostring(got[2]))
      assert.truthy(open_fds() <= fds)   -- no descriptor left behind
    end))

    it("cancels a handler writing a long response when the client goes away", T(function()
      local tx, rx = quench.oneshot()
      local _, port, stop = start(function(req, res)
        if req.path == "/warm-up" then return res:finish() end
        local ok, err = pcall(function()
          local chunk = string.rep("x", 64 * 1024)
          for _ = 1, 100000 do
            local r, msg = res:write(chunk)
            if not r then error(msg, 0) end
          end
        end)
        tx:send(ok and "finished" or (quench.is_cancelled(err) and "cancelled" or "write failed"))
        if not ok then error(err, 0) end
      end, { on_error = function() end })
      local fds = baseline(port)
      do
        local c <close> = assert(quench.tcp.connect("127.0.0.1", port))
        c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c:read(100000)
      end
      local got = rx:recv()
      stop()
      assert.truthy(got == "cancelled" or got == "write failed", got)
      assert.truthy(open_fds() <= fds)   -- no descriptor left behind
    end))

    it("stop(grace): no new connections, idle ones closed, in-flight ones finish", T(function()
      local tx, rx = quench.oneshot()
      local srv, port = start(function(_, res)
        tx:send(true)
        quench.sleep(0.2)
        res:finish("finished")
      end)
      local idle <close> = assert(quench.tcp.connect("127.0.0.1", port))
      local busy <close> = assert(quench.tcp.connect("127.0.0.1", port))
      busy:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      rx:recv()
      local stopper = quench.spawn(srv.stop, srv, 5)
      local out = busy:read("a")
      assert.equal(200, status_of(out))
      assert.truthy(out:find("Connection: close\r\n", 1, true))
      assert.equal("finished", out:match("\r\n\r\n(.*)$"))
      assert.equal("", idle:read("a"))
      assert.same({ true, true }, { stopper:join() })
      assert.is_nil(quench.tcp.connect("127.0.0.1", port))
    end))

    -- A connection whose GET is in its handler (which sends on rx's sender
    -- once there), and the time then.
    local function in_handler(port, rx)
      local c = assert(quench.tcp.connect("127.0.0.1", port))
      c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      rx:recv()
      return c, quench.now()
    end

    it("stop(grace) closes a connection whose response was under way when it came, at its end",
       T(function()
      local tx, rx = quench.oneshot()
      local go_tx, go_rx = quench.oneshot()
      local srv, port = start(function(_, res)
        res:write("first ")                           -- the head goes out before the stop: kept alive
        tx:send(true)
        go_rx:recv()
        res:finish("last")
      end)
      local c <close>, t0 = in_handler(port, rx)
      local stopper = quench.spawn(srv.stop, srv, 10)
      quench.yield()
      go_tx:send(true)
      local out = c:read("a")                         -- the whole response, then the end
      assert.truthy(out:find("first ", 1, true) and out:find("last", 1, true))
      assert.same({ true, true }, { stopper:join() })
      assert.truthy(quench.now() - t0 < 5)            -- not at the end of the grace
    end))

    it("stop(grace) aborts a handler that outlives the grace; its <close> runs", T(function()
      local log = {}
      local tx, rx = quench.oneshot()
      local srv, port, stop = start(function(_, res)
        local _g <close> = quench.guard(function() log[#log + 1] = "closed" end)
        tx:send(true)
        quench.sleep(30)
        res:finish("never")
      end)
      local c <close>, t0 = in_handler(port, rx)
      srv:stop(0.1)
      assert.truthy(quench.now() - t0 < 2)
      assert.same({ "closed" }, log)
      assert.equal("", c:read("a"))
      stop()
    end))
  end)

  it("quench.http.serve listens and serves; with sigterm, SIGTERM stops it", T(function()
    local tx, rx = quench.oneshot()
    local h = quench.spawn(http.serve, { sigterm = true, grace = 1,
      on_listen = function(server) tx:send(select(2, server:getsockname())) end }, hello)
    local port = rx:recv()
    local out = raw(port, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert.equal("hello GET /x\n", out:match("\r\n\r\n(.*)$"))
    assert.equal(0, (run("kill", { "-TERM", PID })))
    assert.same({ true, true }, { h:join() })
    assert.is_nil(quench.tcp.connect("127.0.0.1", port))
  end))

  it("walks every header field in order with pairs, and closes after max_requests", T(function()
    local fields = {}
    local _, port, stop = start(function(req, res)
      for name, value in pairs(req.headers) do fields[#fields + 1] = name .. "=" .. value end
      res:finish("ok")
    end, { max_requests = 1 })
    local out = raw(port, "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\r\n" ..
                          "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    stop()
    assert.same({ "Host=x", "X-A=1", "x-a=2" }, fields)
    assert.equal(1, count(out, "HTTP/1%.1 200"))
    assert.truthy(out:find("Connection: close\r\n", 1, true))
  end))

  it("holds connections past max_connections until one ends", T(function()
    local release = quench.channel()
    local _, port, stop = start(function(_, res)
      release:recv()
      res:finish("done")
    end, { max_connections = 1 })
    local a <close> = assert(quench.tcp.connect("127.0.0.1", port))
    a:write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    local b <close> = assert(quench.tcp.connect("127.0.0.1", port))   -- the kernel queues it
    b:write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert.is_false((quench.timeout(0.2, b.read, b, "a")))          -- not served yet
    release:send(true)
    assert.equal(200, status_of(a:read("a")))
    release:send(true)
    assert.equal(200, status_of(b:read("a")))
    stop()
  end))

  it("shares a port between servers with reuseport", T(function()
    local a = assert(http.listen("127.0.0.1", 0, { reuseport = true }))
    local _, port = a:getsockname()
    assert.is_nil(http.listen("127.0.0.1", port))            -- without it: EADDRINUSE
    local b = assert(http.listen("127.0.0.1", port, { reuseport = true }))
    local ha = quench.spawn(a.serve, a, function(_, res) res:finish("a") end)
    local hb = quench.spawn(b.serve, b, function(_, res) res:finish("b") end)
    local got = {}
    for _ = 1, 20 do
      local body = raw(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):match("\r\n\r\n(.*)$")
      got[body] = true
    end
    a:stop(0)
    b:stop(0)
    assert.same({ true, true }, { ha:join() })
    assert.same({ true, true }, { hb:join() })
    assert.truthy(got.a or got.b)
  end))

  it("decodes query strings", function()
    assert.same({ a = "1 2", ["b c"] = "=", d = "" }, http.parse_query("a=1+2&b%20c=%3D&d"))
    assert.equal("a b/", http.unescape("a+b%2f"))
  end)

  it("listens on a Unix socket (host \"unix:/path\")", T(function()
    local path = os.tmpname()
    os.remove(path)
    local srv = assert(http.listen("unix:" .. path, { max_body = 100 }))
    local h = quench.spawn(srv.serve, srv, function(req, res)
      res:finish(req.method .. " " .. req.path .. " via " .. req.peer.path)
    end)
    local st, out = run("curl", { "-s", "--unix-socket", path, "http://localhost/u" })
    srv:stop(0)
    assert.same({ true, true }, { h:join() })
    assert.equal(0, st)
    assert.equal("GET /u via " .. path, out)
  end))

  describe("over TLS (opts.tls)", function()
    local pki
    setup(function()
      local ok, tls_pki = pcall(require, "helpers.tls_pki")
      assert(ok and quench.tls, "opts.tls needs quench.tls and spec/helpers/tls_pki.lua")
      pki = tls_pki.make()
    end)
    teardown(function() require("helpers.tls_pki").remove(pki) end)

    it("parks an idle TLS connection and serves its next request", T(function()
      local _, port, stop = start(function(req, res) res:finish("secret " .. req.path .. "\n") end,
        { tls = { certificate = pki.server.cert, key = pki.server.key } })
      local c <close> = assert(quench.tls.connect("127.0.0.1", port, { cafile = pki.ca.cert }))
      local function get(path)
        c:write("GET " .. path .. " HTTP/1.1\r\nHost: x\r\n\r\n")
        local lines = {}
        repeat lines[#lines + 1] = c:read("l") until lines[#lines] == "\r" or lines[#lines] == nil
        local len = tonumber(table.concat(lines, "\n"):match("Content%-Length: (%d+)"))
        return len and c:read(len)
      end
      local before = #quench.tasks()
      assert.equal("secret /a\n", get("/a"))
      quench.sleep(0.05)
      assert.equal(before, #quench.tasks())           -- parked: no task of its own
      assert.equal("secret /b\n", get("/b"))
      stop()
    end))

    it("serves curl over HTTPS, keep-alive, and survives a client that does not speak TLS", T(function()
      local seen = {}
      local _, port, stop = start(function(req, res)
        seen[#seen + 1] = req.path
        res:finish("secret " .. req.path .. "\n")
      end, { tls = { certificate = pki.server.cert, key = pki.server.key } })
      local plain = raw(port, "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")   -- closed, no answer
      local url = "https://127.0.0.1:" .. port
      local st, out, err = run("curl", { "-s", "-v", "--cacert", pki.ca.cert, url .. "/a", url .. "/b" })
      stop()
      assert.equal(0, st, err)
      assert.equal("secret /a\nsecret /b\n", out)
      assert.equal(1, count(err, "Re%-using existing connection"))
      assert.falsy(plain:find("HTTP/1.1 200", 1, true))
      assert.same({ "/a", "/b" }, seen)
    end))

    it("refuses a tls option that is not a table", function()
      assert.has_error(function() http.listen("127.0.0.1", 0, { tls = true }) end,
        "quench.http.listen: option 'tls' must be a table of TLS options (certificate, key, ...)")
    end)
  end)

  it("refuses bad arguments and options, naming the function", T(function()
    assert.has_error(function() http.listen("127.0.0.1", 0, { nope = 1 }) end,
      "quench.http.listen: unknown option 'nope'")
    assert.has_error(function() http.listen("127.0.0.1", 0, { max_body = -1 }) end,
      "quench.http.listen: option 'max_body' must be a non-negative number")
    local srv <close> = assert(http.listen("127.0.0.1", 0))
    assert.has_error(function() srv:serve(42) end,
      "bad argument #1 to 'quench.http.server:serve' (function expected, got number)")
  end))
end)
