-- One port, two protocols, and clients that stop reading (docs/io.md
-- "Readiness, peeking, and I/O that never waits" and "Closing with writes
-- queued"). The server peeks at a connection's first bytes to pick a
-- handler without consuming them, so the handler reads the request whole;
-- a timeout bounds every request, `<close>` closes every stream, and the
-- `linger` option bounds how long a stream closed with writes still queued
-- keeps its socket for a client that reads nothing.
-- Real clock (real sockets); the output is the same every run.
-- Run: lua5.4 examples/sniff_server.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"
local tcp = quench.tcp

local function say(fmt, ...)
  io.stdout:write(string.format(fmt, ...), "\n")
  io.stdout:flush()
end

---------------------------------------------------------------- the server

local function http(conn)
  local request = conn:read("l")                     -- the whole line: peek took nothing
  -- /big is more than the kernel's socket buffers of both ends hold
  local body = ("x"):rep(request:find("/big", 1, true) and 32 << 20 or 4 << 20)
  conn:write("HTTP/1.0 200 OK\r\nContent-Length: ", #body, "\r\n\r\n", body)
  return request
end

local function line_protocol(conn)
  local request = conn:read("l")
  conn:write("PONG\n")
  return request
end

local function handle(stream, log)
  local conn <close> = stream
  -- wait for the first bytes (at most 1 s), look at them, take nothing
  local ok, first = quench.timeout(1, conn.peek, conn, 4)
  if not ok or not first then return end
  local handler = first:sub(1, 3) == "GET" and http or line_protocol
  local done, request = quench.timeout(1, handler, conn)
  log(done and ("served " .. request) or "request timed out: closing")
end

local function serve(server, log)
  while true do
    local s = server:accept()
    if not s then return end
    quench.spawn(handle, s, log)
  end
end

---------------------------------------------------------------- the clients

quench.run({ clock = "real" }, function()
  local log = quench.channel(16)
  local server <close> = assert(tcp.listen("127.0.0.1", 0, { linger = 0.3 }))
  local _, port = server:getsockname()
  local acceptor = quench.spawn(serve, server, function(m) log:send(m) end)

  local ping <close> = assert(tcp.connect("127.0.0.1", port))
  ping:write("PING\n")
  say("line client got: %s", ping:read("l"))
  say("server: %s", log:recv())

  local web <close> = assert(tcp.connect("127.0.0.1", port))
  web:write("GET / HTTP/1.0\r\n\r\n")
  local status = web:read("l")
  local total = 0
  while web:readable() do                            -- drain what is there, never waiting
    local data = web:try_read()
    if not data then break end                       -- EOF
    total = total + #data
  end
  say("web client got: %s (%d more bytes)", status:gsub("\r", ""), total)
  say("server: %s", log:recv())

  local stuck <close> = assert(tcp.connect("127.0.0.1", port))
  stuck:write("GET /big HTTP/1.0\r\n\r\n")          -- then reads nothing
  say("server: %s", log:recv())
  -- the handler closed its stream with most of the answer still queued:
  -- its socket lingers while the client takes nothing, 0.3 s, then is
  -- reset, and the server's descriptor is free again
  quench.sleep(2)
  local got, data, err = 0
  repeat
    data, err = stuck:read_some()
    got = got + (data and #data or 0)
  until data == nil
  say("stuck client, reading 2 s later: part of the answer (%s), then %s",
    got < 32 << 20 and "cut" or "whole", err)
  acceptor:abort()
end)
say("done")
