-- LuaSec's ssl.https, unmodified (Debian's lua-sec), on quench: the
-- loader of quench.socket gives it quench.socket for `require "socket"`
-- and quench.ssl (LuaSec's API on quench.tls) for `require "ssl"`, so each
-- HTTPS request is a quench task's await. Three requests run at once; a
-- fourth is cut by quench.timeout; a certificate for another name is
-- refused with LuaSec's error string; ssl.wrap is used directly, as
-- drivers written for LuaSec do. The HTTPS server is this script's own
-- (quench.tls on 127.0.0.1), with a throwaway CA made by `openssl`.
-- Real clock, loopback only.
-- Run: lua5.4 examples/https_luasec.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"
local qsocket = require "quench.socket"

-- ---- a CA and two certificates signed by it, made now ----
local dir = assert(io.popen("mktemp -d /tmp/quench-luasec.XXXXXX")):read("l")
local function sh(cmd) assert(os.execute(cmd .. " >/dev/null 2>&1"), cmd) end
local key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
sh(("openssl req -x509 %s -keyout %s/ca.key -out %s/ca.pem -days 1 -subj '/CN=example CA'")
   :format(key, dir, dir))
local function leaf(name, san)
  sh(("openssl req %s -keyout %s/%s.key -out %s/%s.csr -subj '/CN=%s'")
     :format(key, dir, name, dir, name, name))
  local ext = assert(io.open(dir .. "/" .. name .. ".ext", "w"))
  ext:write("subjectAltName=" .. san .. "\n")
  ext:close()
  sh(("openssl x509 -req -in %s/%s.csr -CA %s/ca.pem -CAkey %s/ca.key -CAcreateserial -days 1 " ..
      "-extfile %s/%s.ext -out %s/%s.pem"):format(dir, name, dir, dir, dir, name, dir, name))
end
leaf("localhost", "DNS:localhost,IP:127.0.0.1")
leaf("elsewhere.example", "DNS:elsewhere.example")

-- ---- an HTTPS server: GET /<seconds>/<name> answers after <seconds> ----
local function serve(certname)
  local server = assert(quench.tls.listen("127.0.0.1", 0, {
    certificate = dir .. "/" .. certname .. ".pem", key = dir .. "/" .. certname .. ".key" }))
  local _, port = server:getsockname()
  quench.spawn(function()
    quench.scope(function(sc)
      while true do
        local s = server:accept()
        if not s then return end
        sc:spawn(function()
          local _ <close> = s
          local line = s:read("l")
          if not line then return end
          repeat local h = s:read("l") until h == nil or h == "\r"
          local secs, name = line:match("^GET /([%d.]+)/(%w+)")
          quench.sleep(tonumber(secs) or 0)
          local body = ("%s after %s s over %s"):format(name, secs, s:tls_version())
          s:write("HTTP/1.1 200 OK\r\nContent-Length: ", #body, "\r\nConnection: close\r\n\r\n", body)
        end)
      end
    end)
  end)
  return server, port
end

quench.run(function()
  local https = qsocket.require "ssl.https"   -- lua-sec's file; its require "ssl" is quench.ssl
  local ltn12 = require "ltn12"
  local ca = dir .. "/ca.pem"
  local _server <close>, port = serve("localhost")

  -- LuaSec's generic form, verification on: verify = "peer" and our CA
  local function get(url)
    local body = {}
    local ok, code = https.request({ url = url, sink = ltn12.sink.table(body),
                                     verify = "peer", cafile = ca })
    if not ok then return nil, code end
    return table.concat(body), code
  end

  local tasks = {}
  for i, name in ipairs({ "alpha", "beta", "gamma" }) do
    tasks[i] = quench.spawn(get, ("https://localhost:%d/0.2/%s"):format(port, name))
  end
  for _, t in ipairs(tasks) do
    local _, body, code = t:join()
    print(("got %q (status %s)"):format(body, code))
  end

  print("the 5 s request within 0.1 s:",
        quench.timeout(0.1, get, ("https://localhost:%d/5/slow"):format(port)))

  local _other <close>, other_port = serve("elsewhere.example")
  print("a certificate for another name:", get(("https://localhost:%d/0/x"):format(other_port)))

  -- ssl.wrap, as a driver written for LuaSec does it
  local ssl = qsocket.require "ssl"
  local sock = qsocket.tcp()
  assert(sock:connect("127.0.0.1", port))
  local conn = assert(ssl.wrap(sock, { mode = "client", protocol = "any",
                                       verify = "peer", cafile = ca }))
  conn:sni("localhost")
  conn:settimeout(5)
  assert(conn:dohandshake())
  print("handshake:", conn:info("protocol"), "peer:", conn:getpeercertificate():subject()[1].value,
        "verified:", conn:getpeerverification())
  conn:send("GET /0/direct HTTP/1.0\r\n\r\n")
  print("status line:", conn:receive("*l"))
  conn:close()
end)

os.execute("rm -rf '" .. dir .. "'")
print("done")
