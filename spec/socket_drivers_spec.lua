-- Unmodified third-party LuaSocket code on quench.socket (issue 17): Debian's
-- socket.http + ltn12 (lua-socket) against python's http.server and against
-- HTTP servers written here with quench.tcp (slow, silent, lying ones), and
-- Debian's redis-lua (lua-redis, packaged for Lua 5.1-5.3: its one
-- pure-Lua file is loaded from /usr/share/lua/5.3 by quench.socket.require)
-- against a redis-server started here on a free loopback port, stopped by
-- PID (kill on drop). A missing package or binary fails these specs.
local quench = require "quench"
local qsocket = require "quench.socket"

local REDIS_PATH = "/usr/share/lua/5.3/?.lua;/usr/share/lua/5.1/?.lua"

local function T(fn) return quench.test(fn, { clock = "real" }) end

local free_port = require("helpers.servers").free_port

-- Wait until something accepts connections on port (at most 10 s).
local function wait_listening(port, proc)
  for _ = 1, 200 do
    local c = quench.tcp.connect("127.0.0.1", port)
    if c then
      c:close()
      return
    end
    local i = quench.select(quench.sleep_op(0.05), proc:wait_op())
    assert(i == 1, "the server exited before listening")
  end
  error("nothing listens on port " .. port)
end

-- Spawn a server binary without the sanitizer preload (scripts/test.sh's).
local function spawn(file, args)
  local p, msg = quench.process.spawn(file, {
    args = args, stdout = "ignore", stderr = "ignore", env = { LD_PRELOAD = false },
  })
  assert(p, ("%s: %s (is its Debian package installed? scripts/deps.sh)"):format(file, msg))
  return p
end

local tiny_http = require "helpers.tiny_http"
local reply = tiny_http.reply

-- An HTTP/1.1 server on quench.tcp (helpers/tiny_http.lua). Returns port, stop.
local function http_server(handler)
  return tiny_http.serve(assert(quench.tcp.listen("127.0.0.1", 0)), handler)
end

describe("socket.http and ltn12 on quench.socket", function()
  local http, ltn12
  setup(function()
    http = qsocket.require "socket.http"
    ltn12 = require "ltn12"
  end)

  it("is Debian's socket.http, loaded with quench.socket as its socket", function()
    assert.is_function(http.request)
    assert.equal(qsocket, qsocket.require "socket")          -- the mapping itself
    assert.equal(http, qsocket.require "socket.http")        -- loaded once
    assert.not_equal(http, package.loaded["socket.http"])    -- never the blocking one
  end)

  it("takes https:// through lua-sec's ssl.https on quench.ssl (spec/ssl_spec.lua)", T(function()
    local port = free_port()
    assert.same({ nil, "connection refused" }, { http.request("https://127.0.0.1:" .. port .. "/") })
    assert.equal(require "quench.ssl", qsocket.require "ssl")
  end))

  it("fetches from python's http.server, by the simple and the generic form", T(function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(quench.fs.mkdir(dir))
    local body = ("0123456789abcdef"):rep(4096)                 -- 64 KiB
    assert(quench.fs.write_file(dir .. "/data.txt", body))
    local port = free_port()
    local server <close> = spawn("python3", { "-m", "http.server", tostring(port),
                                              "--bind", "127.0.0.1", "--directory", dir })
    wait_listening(port, server)
    local url = ("http://127.0.0.1:%d/data.txt"):format(port)
    local got, code, headers = http.request(url)
    assert.equal(200, code)
    assert.equal(body, got)
    assert.equal(tostring(#body), headers["content-length"])
    local parts = {}
    local ok, code2 = http.request { url = url, sink = ltn12.sink.table(parts) }
    assert.equal(1, ok)
    assert.equal(200, code2)
    assert.equal(body, table.concat(parts))
    local _, missing = http.request(("http://127.0.0.1:%d/nope"):format(port))
    assert.equal(404, missing)
    assert(quench.fs.unlink(dir .. "/data.txt"))
    assert(quench.fs.rmdir(dir))
  end))

  it("runs several slow requests at the same time (each answer waits for all of them)",
     T(function()
    local N = 5
    local all_in = quench.barrier(N)
    local port, stop = http_server(function(path, conn)
      all_in:wait()              -- no answer until N requests are in: sequential would hang
      reply(conn, "answer " .. path)
    end)
    local tasks = {}
    for i = 1, N do
      tasks[i] = function()
        return http.request(("http://127.0.0.1:%d/r%d"):format(port, i))
      end
    end
    local ok, results = quench.timeout(10, quench.join_all, table.unpack(tasks))
    assert.is_true(ok, "the requests did not overlap")
    for i = 1, N do
      assert.same({ true, "answer /r" .. i, 200 }, { results[i][1], results[i][2], results[i][3] })
    end
    stop()
  end))

  it("lets quench.timeout cancel a request; the dropped connection is closed when collected",
     T(function()
    local closed = quench.channel()
    local port, stop = http_server(function(path, conn)
      if path == "/never" then
        closed:send(conn:read("a"))                 -- waits until the client's end goes
      else
        reply(conn, "fine")
      end
    end)
    local ok, t = quench.timeout(0.2, http.request, ("http://127.0.0.1:%d/never"):format(port))
    assert.is_false(ok)
    assert.is_true(quench.is_timeout(t))
    collectgarbage()
    collectgarbage()
    local got = quench.timeout(5, closed.recv, closed)
    assert.is_true(got, "the aborted request's connection stayed open")
    -- the runtime and the server are fine: the next request goes through
    assert.equal("fine", http.request(("http://127.0.0.1:%d/ok"):format(port)))
    stop()
  end))

  it("times out a peer that never answers (settimeout through http.TIMEOUT)", T(function()
    local port, stop = http_server(function(_, conn) conn:read("a") end)
    local saved = http.TIMEOUT
    http.TIMEOUT = 0.1
    local r, err = http.request(("http://127.0.0.1:%d/"):format(port))
    http.TIMEOUT = saved
    assert.is_nil(r)
    assert.equal("timeout", err)
    stop()
  end))

  it("reports a closed port, garbage headers and a half-sent body", T(function()
    local closed_port = free_port()
    assert.same({ nil, "connection refused" },
                { http.request(("http://127.0.0.1:%d/"):format(closed_port)) })
    local port, stop = http_server(function(path, conn)
      if path == "/garbage" then
        conn:write("HTTP/1.1 200 OK\r\nthis is no header\r\n\r\n")
      elseif path == "/half" then
        conn:write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
      elseif path == "/badlen" then
        conn:write("HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\nxyz")
      end
    end)
    local base = ("http://127.0.0.1:%d"):format(port)
    assert.same({ nil, "malformed reponse headers" }, { http.request(base .. "/garbage") })
    local parts = {}
    local r, err = http.request { url = base .. "/half", sink = ltn12.sink.table(parts) }
    assert.is_nil(r)
    assert.equal("closed", err)
    -- socket.http's "by-length" source drops the partial chunk, as on LuaSocket
    assert.equal("", table.concat(parts))
    local body = http.request(base .. "/badlen")       -- LuaSocket reads until closed
    assert.equal("xyz", body)
    stop()
  end))
end)

describe("socket.smtp on quench.socket", function()
  it("sends a message to an SMTP server (two at once), and reports a refusing one", T(function()
    local smtp = qsocket.require "socket.smtp"
    local received = {}
    local reject = false
    local srv = assert(quench.tcp.listen("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local serving = quench.spawn(function()
      quench.scope(function(sc)
        while true do
          local c = srv:accept()
          if not c then return end
          sc:spawn(function()
            local conn <close> = c
            conn:write("220 quench test ESMTP\r\n")
            local mail = { rcpt = {} }
            while true do
              local line = conn:read("l")
              if not line then return end
              local cmd = line:match("^(%u+)")
              if cmd == "EHLO" then
                conn:write("250-quench\r\n250 OK\r\n")
              elseif cmd == "MAIL" then
                mail.from = line:match("<(.-)>")
                conn:write(reject and "550 no thanks\r\n" or "250 OK\r\n")
              elseif cmd == "RCPT" then
                mail.rcpt[#mail.rcpt + 1] = line:match("<(.-)>")
                conn:write("250 OK\r\n")
              elseif cmd == "DATA" then
                conn:write("354 go on\r\n")
                local body = {}
                for l in conn:lines() do
                  if l == ".\r" then break end
                  body[#body + 1] = l
                end
                mail.data = table.concat(body, "\n")
                received[#received + 1] = mail
                conn:write("250 queued\r\n")
              elseif cmd == "QUIT" then
                conn:write("221 bye\r\n")
                return
              else
                conn:write("500 what\r\n")
              end
            end
          end)
        end
      end)
    end)
    local function send(to, text)
      return smtp.send {
        from = "<a@example.org>", rcpt = { "<" .. to .. ">" },
        source = smtp.message { headers = { subject = "hi " .. to }, body = text },
        server = "127.0.0.1", port = port,
      }
    end
    local r = quench.join_all(function() return send("b@example.org", "first body") end,
                              function() return send("c@example.org", "second body") end)
    assert.same({ true, 1 }, { r[1][1], r[1][2] })
    assert.same({ true, 1 }, { r[2][1], r[2][2] })
    assert.equal(2, #received)
    local by = {}
    for _, m in ipairs(received) do by[m.rcpt[1]] = m end
    assert.equal("a@example.org", by["b@example.org"].from)
    assert.matches("Subject: hi b@example.org", by["b@example.org"].data)
    assert.matches("second body", by["c@example.org"].data)
    reject = true
    local ok, err = send("d@example.org", "refused")
    assert.is_nil(ok)
    assert.equal("550 no thanks", err)
    srv:close()
    serving:abort()
  end))
end)

describe("redis-lua on quench.socket", function()
  local redis
  setup(function()
    redis = qsocket.require("redis", { path = REDIS_PATH })
  end)

  -- A redis-server on a free port (and a Unix socket), killed on drop.
  local function redis_server()
    local port = free_port()
    local sock = os.tmpname() .. ".redis.sock"
    local p = spawn("redis-server", { "--port", tostring(port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no",
                                      "--unixsocket", sock })
    wait_listening(port, p)
    return p, port, sock
  end

  it("is Debian's redis-lua, unmodified, on quench.socket", function()
    assert.matches("^redis%-lua", redis._VERSION)
    assert.is_function(redis.connect)
  end)

  it("runs commands, from many tasks at once, over TCP and over a Unix socket", T(function()
    local _server <close>, port, sock = redis_server()
    local c = redis.connect("127.0.0.1", port)
    assert.is_true(c:ping())
    assert.is_true(c:set("greeting", "hello"))
    assert.equal("hello", c:get("greeting"))
    c:del("counter")
    local tasks = {}
    for k = 1, 20 do
      tasks[k] = function()
        local cc = redis.connect("127.0.0.1", port)
        for _ = 1, 20 do cc:incr("counter") end
        cc:quit()
      end
    end
    for _, r in ipairs(quench.join_all(table.unpack(tasks))) do assert.is_true(r[1], r[2]) end
    assert.equal("400", c:get("counter"))
    local u = redis.connect { scheme = "unix", path = sock }
    assert.equal("hello", u:get("greeting"))
    u:quit()
    c:quit()
  end))

  it("pipeline: the driver's own Lua 5.1 table.insert fails on 5.4; the globals workaround",
     T(function()
    local _server <close>, port = redis_server()
    local c = redis.connect("127.0.0.1", port)
    local ok, err = pcall(c.pipeline, c, function(p) p:set("a", "1"); p:get("a") end)
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'table_insert' %(position out of bounds%)", err)
    -- the same call on plain Lua 5.4, no socket at all: the driver's bug
    assert.has_error(function() table.insert({}, 2, nil) end)
    local function insert51(t, pos, ...)
      if select("#", ...) == 0 then t[#t + 1] = pos; return end
      local e = #t + 1
      if pos > e then e = pos end
      for i = e, pos + 1, -1 do t[i] = t[i - 1] end
      t[pos] = ...
    end
    local redis51 = qsocket.require("redis", { path = REDIS_PATH,
      globals = { table = setmetatable({ insert = insert51 }, { __index = table }) } })
    assert.are_not.equal(redis, redis51)
    local d = redis51.connect("127.0.0.1", port)
    local replies, n = d:pipeline(function(p)
      p:set("a", "1"); p:get("a"); p:get("missing"); p:incr("n"); p:ping()
    end)
    assert.equal(5, n)
    assert.is_true(replies[1])
    assert.equal("1", replies[2])
    assert.is_nil(replies[3])
    assert.equal(1, replies[4])
    assert.is_true(replies[5])
    assert.has_error(function() qsocket.require("redis", { globals = 1 }) end,
      "bad argument #2 to 'quench.socket.require' (opts.globals must be a table, got number)")
    d:quit()
    c:quit()
  end))

  it("times out with the driver's own timeout, and with quench.timeout", T(function()
    local _server <close>, port = redis_server()
    local c = redis.connect { host = "127.0.0.1", port = port, timeout = 0.1 }
    local ok, err = pcall(c.blpop, c, "empty-list", 10)
    assert.is_false(ok)
    assert.matches("timeout", err)
    local d = redis.connect("127.0.0.1", port)
    local done = quench.timeout(0.1, d.blpop, d, "empty-list", 10)
    assert.is_false(done)
    -- the aborted command left its reply pending on d: use a new connection
    local e = redis.connect("127.0.0.1", port)
    assert.is_true(e:ping())
    e:quit()
  end))

  it("fails (never hangs) when the server dies mid-way, and on a closed port", T(function()
    local server, port = redis_server()
    local c = redis.connect("127.0.0.1", port)
    assert.is_true(c:set("k", "v"))
    assert(server:kill("SIGKILL"))
    server:wait()
    local in_time, ok, err = quench.timeout(5, pcall, c.get, c, "k")
    assert.is_true(in_time, "a command to a dead server hung")
    assert.is_false(ok)
    assert.matches("closed", err)
    local ok2, err2 = pcall(redis.connect, "127.0.0.1", port)
    assert.is_false(ok2)
    assert.matches("connection refused", err2)
    server:close()
  end))
end)
