-- Two of Debian's OpenResty drivers, unmodified, on quench.ngx:
-- resty.dns.resolver (lua-nginx-dns) asks a DNS server where
-- "chat.example.test" is, and resty.websocket.client (lua-nginx-websocket)
-- talks to the websocket server found there. Both servers are this
-- script's own, on 127.0.0.1: dnsmasq (Debian's dnsmasq-base) serving
-- the name, and a python3-websockets echo server. A quench.timeout bounds
-- a read the server never answers; three tasks resolve at once.
-- Real clock, loopback only.
-- Run: lua5.4 examples/dns_websocket.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"
require("quench.ngx").install()            -- ngx, and require "resty.*", "bit", "ffi"
local resolver = require "resty.dns.resolver"
local websocket = require "resty.websocket.client"

local ECHO = [[
import asyncio, sys, websockets
async def echo(ws, path):
    async for msg in ws:
        if msg != "quiet":
            await ws.send("echo: " + msg)
async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1]), ping_interval=None):
        await asyncio.Future()
asyncio.run(main())
]]

local function free_port()
  local s = assert(quench.tcp.listen("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

-- start a server, wait until it accepts on port; killed when closed (kill
-- on drop). LD_PRELOAD is cleared for it: the test suite preloads the
-- sanitizers into this script, and they are not the servers' to carry.
local function start(file, args, port)
  local p = assert(quench.process.spawn(file, { args = args, stdout = "ignore",
                                                stderr = "ignore", kill_on_drop = true,
                                                env = { LD_PRELOAD = false } }))
  for _ = 1, 200 do
    local c = quench.tcp.connect("127.0.0.1", port)
    if c then c:close(); return p end
    quench.sleep(0.05)
  end
  error(file .. " did not start")
end

quench.run(function()
  local script = os.tmpname()
  assert(quench.fs.write_file(script, ECHO))
  local ws_port, dns_port = free_port(), free_port()
  local _ws <close> = start("/usr/bin/python3", { script, tostring(ws_port) }, ws_port)
  local _dns <close> = start("/usr/sbin/dnsmasq", {
    "--keep-in-foreground", "--port=" .. dns_port, "--listen-address=127.0.0.1",
    "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file=", "--user=root",
    "--host-record=chat.example.test,127.0.0.1",
    "--srv-host=_chat._tcp.example.test,chat.example.test," .. ws_port }, dns_port)

  -- three lookups at once, each task with its own resolver
  local names = { "chat.example.test", "_chat._tcp.example.test", "nowhere.example.test" }
  local tasks = {}
  for i, name in ipairs(names) do
    tasks[i] = quench.spawn(function()
      local r = assert(resolver:new({ nameservers = { { "127.0.0.1", dns_port } }, timeout = 2000 }))
      local qtype = name:match("^_") and r.TYPE_SRV or r.TYPE_A
      return assert(r:query(name, { qtype = qtype }))
    end)
  end
  local _, a = tasks[1]:join()
  local _, srv = tasks[2]:join()
  local _, none = tasks[3]:join()
  print(("%s has address %s"):format(names[1], a[1].address))
  print(("%s is at %s port %d"):format(names[2], srv[1].target, srv[1].port))
  print(("%s: %s"):format(names[3], none.errstr or #none .. " answers"))

  local ws = assert(websocket:new({ timeout = 5000 }))
  assert(ws:connect(("ws://%s:%d/"):format(a[1].address, srv[1].port)))
  ws:send_text("hello")
  print("websocket:", ws:recv_frame())
  ws:send_ping("are you there?")
  print("websocket:", ws:recv_frame())
  ws:send_text("quiet")                      -- the server does not answer this one
  print("a read bounded by quench.timeout:", quench.timeout(0.2, ws.recv_frame, ws))
  ws:close()
  os.remove(script)
end)
print("done")
