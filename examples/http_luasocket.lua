-- LuaSocket's socket.http, unmodified (Debian's lua-socket), on quench:
-- quench.socket.require loads it with `socket` bound to quench.socket, so
-- every request is a quench task's await. Three slow requests run at the
-- same time; a fourth is cut by quench.timeout (its connection is dropped,
-- nothing else notices); an ltn12 pipeline posts a body and collects the
-- answer. The HTTP server is this script's own (quench.tcp, 127.0.0.1).
-- Real clock (real sockets).
-- Run: lua5.4 examples/http_luasocket.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"
local qsocket = require "quench.socket"

local function say(fmt, ...)
  io.stdout:write(string.format(fmt, ...), "\n")
  io.stdout:flush()
end

---------------------------------------------------------------- the server

-- GET /slow/<seconds>/<name>: answers "<name> after <seconds> s" that late;
-- POST /upper: answers the body in capitals. It counts the slow requests
-- in progress at once.
local inflight, most = 0, 0
local function serve(conn)
  local _conn <close> = conn
  local line = conn:read("l")
  if not line then return end
  local length = 0
  while true do
    local h = conn:read("l")
    if h == nil or h == "\r" then break end
    length = tonumber(h:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")) or length
  end
  local method, path = line:match("^(%S+) (%S+)")
  local body
  if method == "POST" then
    body = (conn:read(length) or ""):upper()
  else
    local secs, name = path:match("^/slow/([%d.]+)/(%w+)")
    inflight = inflight + 1
    most = math.max(most, inflight)
    local _done <close> = setmetatable({}, { __close = function() inflight = inflight - 1 end })
    quench.sleep(tonumber(secs) or 0)
    body = ("%s after %s s"):format(name or "?", secs or "0")
  end
  conn:write("HTTP/1.1 200 OK\r\nContent-Length: ", #body, "\r\nConnection: close\r\n\r\n", body)
end

---------------------------------------------------------------- the client

quench.run(function()
  local server <close> = assert(quench.tcp.listen("127.0.0.1", 0))
  local _, port = server:getsockname()
  local _accepting <close> = quench.spawn(function()
    while true do
      local c = server:accept()
      if not c then return end
      quench.spawn(serve, c)
    end
  end)
  local base = ("http://127.0.0.1:%d"):format(port)

  local http = qsocket.require "socket.http"    -- Debian's file, socket = quench.socket
  local ltn12 = require "ltn12"

  -- three requests of 0.3 s each, at once
  local results = quench.join_all(
    function() return http.request(base .. "/slow/0.3/alpha") end,
    function() return http.request(base .. "/slow/0.3/beta") end,
    function() return http.request(base .. "/slow/0.3/gamma") end)
  for _, r in ipairs(results) do say("got %q (status %d)", r[2], r[3]) end
  say("slow requests the server had in progress at once: %d", most)

  -- a request cut short: quench.timeout drops it like any other await
  local ok, why = quench.timeout(0.1, http.request, base .. "/slow/5/late")
  say("the 5 s request within 0.1 s: %s (%s)", tostring(ok), tostring(why))

  -- LuaSocket's own timeout is a quench deadline too
  http.TIMEOUT = 0.1
  local body, err = http.request(base .. "/slow/5/late")
  say("with http.TIMEOUT = 0.1: %s, %s", tostring(body), tostring(err))
  http.TIMEOUT = 60

  -- an ltn12 pipeline: a string source in, a table sink out
  local out = {}
  local sent = "posted through ltn12"
  local r, code = http.request {
    url = base .. "/upper", method = "POST",
    source = ltn12.source.string(sent),
    headers = { ["content-length"] = tostring(#sent) },
    sink = ltn12.sink.table(out),
  }
  say("POST: %s %d %q", tostring(r), code, table.concat(out))
  say("done")
end)
