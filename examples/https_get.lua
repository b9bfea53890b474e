-- HTTPS GET with quench.tls, verification on. So that it runs anywhere
-- (no network), the example starts its own HTTPS server on loopback: it
-- first makes a throwaway CA and a certificate for "localhost" with the
-- `openssl` command, then serves one page with quench.tls.listen, and
-- fetches it with quench.tls.connect trusting that CA (opts.cafile; the
-- default is the system's trust store, which refuses our test CA: shown
-- last). Real clock, loopback only.
-- Run: lua5.4 examples/https_get.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"

-- ---- a CA and a server certificate, made now ----
local dir = assert(io.popen("mktemp -d /tmp/quench-https.XXXXXX")):read("l")
local function sh(cmd) assert(os.execute(cmd .. " >/dev/null 2>&1"), cmd) end
local key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
sh(("openssl req -x509 %s -keyout %s/ca.key -out %s/ca.pem -days 1 -subj '/CN=example CA'")
   :format(key, dir, dir))
sh(("openssl req %s -keyout %s/site.key -out %s/site.csr -subj '/CN=localhost'"):format(key, dir, dir))
local ext = assert(io.open(dir .. "/site.ext", "w"))
ext:write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
ext:close()
sh(("openssl x509 -req -in %s/site.csr -CA %s/ca.pem -CAkey %s/ca.key -CAcreateserial -days 1 " ..
    "-extfile %s/site.ext -out %s/site.pem"):format(dir, dir, dir, dir, dir))

-- ---- a minimal HTTPS server: one task per connection ----
local function serve(stream)
  local request = stream:read("l")           -- the handshake runs here, lazily
  if not request then return end
  repeat local line = stream:read("l") until line == nil or line == "\r"
  local body = "hello over " .. stream:tls_version() .. "\n"
  stream:write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ", #body,
               "\r\nConnection: close\r\n\r\n", body)
  stream:shutdown()                          -- close_notify, then FIN
end

-- ---- the client: GET https://localhost:port/ ----
local function https_get(host, port, path, opts)
  local s, err = quench.tls.connect(host, port, opts)   -- TCP + handshake + verification
  if not s then return nil, err end
  local _ <close> = s
  s:write("GET ", path, " HTTP/1.1\r\nHost: ", host, "\r\nConnection: close\r\n\r\n")
  local status = s:read("l")
  local headers = {}
  for line in s:lines("l") do
    if line == "\r" then break end
    local k, v = line:match("^([^:]+):%s*(.-)\r$")
    if k then headers[k:lower()] = v end
  end
  local body = s:read(tonumber(headers["content-length"]))
  return status:gsub("\r$", ""), body, s:peer_certificate()
end

quench.run(function()
  local server <close> = assert(quench.tls.listen("127.0.0.1", 0, {
    certificate = dir .. "/site.pem", key = dir .. "/site.key", alpn = { "http/1.1" } }))
  local _, port = server:getsockname()
  local acceptor = quench.spawn(function()
    while true do
      local s = server:accept()
      if not s then return end
      quench.spawn(function()
        local _ <close> = s
        serve(s)
      end)
    end
  end)

  local status, body, cert = https_get("localhost", port, "/", { cafile = dir .. "/ca.pem" })
  print("status: " .. status)
  io.write("body: ", body)
  print("server certificate: " .. cert.subject .. ", issued by " .. cert.issuer)

  -- without our CA (the system store), the same server is refused
  local ok, err = https_get("localhost", port, "/", {})
  print("with the system trust store:", ok, err)

  server:close()
  acceptor:join()
end)

os.execute("rm -rf '" .. dir .. "'")
