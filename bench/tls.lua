-- TLS beside plain TCP, in one process each (same output as
-- bench/workloads.lua: one `peer=quench workload=... value=... unit=...`
-- line per run):
--   W6 and W6TLS: echo, C clients x R round trips of SIZE bytes (DESIGN §6 W6)
--   BULK and BULKTLS: BULK_MB MiB one way over one connection, written in
--   256 KiB writes, read with read_some(BULK_READ) (>= 16 KiB reads)
--   BULKP and BULKTLSP: the same, the writer in another quench process (so
--   the two ends' work runs on two cores, as a real client and server's
--   would); timed by the reader, from accept to the end of the stream
-- Certificates (a CA and one for localhost) are made with `openssl` in a
-- temporary directory, or taken from TLS_CA, TLS_CERT and TLS_KEY (PEM
-- files, as bench/tls.sh passes them); the client verifies as in production.
--
--   LUA_CPATH='./build/?.so;;' lua5.4 bench/tls.lua all      (or W6 W6TLS BULK BULKTLS ...)
--   bench/tls.sh runs these beside the tokio peer (bench/peers/tokio-tls)
local quench = require "quench"

local function num(name, dflt) return math.tointeger(tonumber(os.getenv(name) or "")) or dflt end
local C, R, SZ = num("W6_CLIENTS", 100), num("W6_ROUNDS", 1000), num("W6_SIZE", 64)
local BULK_MB, BULK_READ = num("BULK_MB", 256), num("BULK_READ", 64 * 1024)

local has_socket, socket_core = pcall(require, "socket.core")
local function now() return has_socket and socket_core.gettime() or quench.now() end

local function report(w, value, unit, ok, extra)
  local line = ("peer=quench workload=%s value=%.0f unit=%s check=%s"):format(
    w, value, unit, ok and "ok" or "FAIL")
  for k, v in pairs(extra or {}) do line = line .. (" %s=%s"):format(k, v) end
  print(line)
  io.flush()
  return ok
end

local pki
local function make_pki()
  local ca, cert, key = os.getenv("TLS_CA"), os.getenv("TLS_CERT"), os.getenv("TLS_KEY")
  if ca and cert and key then return { ca = ca, cert = cert, key = key } end
  local dir = io.popen("mktemp -d /tmp/quench-bench-tls.XXXXXX"):read("l")
  local function sh(cmd) assert(os.execute(cmd .. " >/dev/null 2>&1"), cmd) end
  local newkey = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
  sh(("openssl req -x509 %s -keyout %s/ca.key -out %s/ca.pem -days 1 -subj /CN=bench")
     :format(newkey, dir, dir))
  sh(("openssl req %s -keyout %s/s.key -out %s/s.csr -subj /CN=localhost"):format(newkey, dir, dir))
  local f = assert(io.open(dir .. "/ext", "w"))
  f:write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
  f:close()
  sh(("openssl x509 -req -in %s/s.csr -CA %s/ca.pem -CAkey %s/ca.key -CAcreateserial -days 1 " ..
      "-extfile %s/ext -out %s/s.pem"):format(dir, dir, dir, dir, dir))
  return { dir = dir, ca = dir .. "/ca.pem", cert = dir .. "/s.pem", key = dir .. "/s.key" }
end

-- listen/connect for plain TCP or TLS (a shared client context: the CA
-- file is read once, as a real client would).
local function transport(secure)
  if not secure then
    return function() return assert(quench.tcp.listen("127.0.0.1", 0, { nodelay = true })) end,
           function(port) return assert(quench.tcp.connect("127.0.0.1", port, { nodelay = true })) end
  end
  local ctx = assert(quench.tls.context({ cafile = pki.ca }))
  return function()
    return assert(quench.tls.listen("127.0.0.1", 0, { certificate = pki.cert, key = pki.key,
                                                      nodelay = true }))
  end, function(port)
    return assert(quench.tls.connect("localhost", port, { context = ctx, nodelay = true }))
  end
end

local function w6(secure)
  local listen, connect = transport(secure)
  local msg = string.rep("x", SZ)
  local elapsed, good = quench.run(function()
    local server = listen()
    local _, port = server:getsockname()
    local acceptor = quench.spawn(function()
      for _ = 1, C do
        local s = assert(server:accept())
        quench.spawn(function()
          while true do
            local data = s:read_some(4096)
            if not data then break end
            s:write(data)
          end
          s:close()
        end)
      end
    end)
    local t0 = now()
    local hs, all = {}, true
    for c = 1, C do
      hs[c] = quench.spawn(function()
        local s = connect(port)
        for _ = 1, R do
          s:write(msg)
          if s:read(SZ) ~= msg then all = false end
        end
        s:close()
      end)
    end
    for c = 1, C do assert(hs[c]:join()) end
    local e = now() - t0
    acceptor:join()
    server:close()
    return e, all
  end)
  return report(secure and "W6TLS" or "W6", C * R / elapsed, "roundtrips/s", good,
                { elapsed_s = ("%.3f"):format(elapsed) })
end

local CHUNK = string.rep("0123456789abcdef", 16 * 1024)   -- 256 KiB

local function bulk(secure)
  local listen, connect = transport(secure)
  local total = BULK_MB * 1024 * 1024
  local chunk = CHUNK
  local elapsed, got = quench.run(function()
    local server = listen()
    local _, port = server:getsockname()
    local reader = quench.spawn(function()
      local s = assert(server:accept())
      local n = 0
      while true do
        local data = s:read_some(BULK_READ)
        if not data then break end
        n = n + #data
      end
      s:close()
      return n
    end)
    local c = connect(port)
    local t0 = now()
    for _ = 1, total // #chunk do assert(c:write(chunk)) end
    assert(c:shutdown())
    local _, n = reader:join()
    local e = now() - t0
    c:close()
    server:close()
    return e, n
  end)
  return report(secure and "BULKTLS" or "BULK", total / elapsed / 1e6, "MB/s", got == total,
                { elapsed_s = ("%.3f"):format(elapsed), read_size = BULK_READ })
end

-- The far end of BULKP/BULKTLSP, in its own process: connect, write
-- BULK_MB MiB, close.
local function bulk_writer(secure, port)
  local _, connect = transport(secure)
  quench.run(function()
    local c = connect(port)
    for _ = 1, BULK_MB * 1024 * 1024 // #CHUNK do assert(c:write(CHUNK)) end
    assert(c:shutdown())
    repeat until not c:read_some(4096)   -- until the reader closes (no reset)
    c:close()
  end)
end

local function bulk_process(secure)
  local listen = transport(secure)
  local total = BULK_MB * 1024 * 1024
  local lua = arg[-1] or "lua5.4"
  local elapsed, got = quench.run(function()
    local server = listen()
    local _, port = server:getsockname()
    local child = assert(io.popen(("'%s' '%s' bulk-writer %s %d"):format(
      lua, arg[0], secure and "tls" or "tcp", port), "r"))
    local s = assert(server:accept())
    local t0, n = now(), 0
    while true do
      local data = s:read_some(BULK_READ)
      if not data then break end
      n = n + #data
    end
    local e = now() - t0
    s:close()
    server:close()
    child:close()
    return e, n
  end)
  return report(secure and "BULKTLSP" or "BULKP", total / elapsed / 1e6, "MB/s", got == total,
                { elapsed_s = ("%.3f"):format(elapsed), read_size = BULK_READ })
end

local RUN = { W6 = function() return w6(false) end, W6TLS = function() return w6(true) end,
              BULK = function() return bulk(false) end, BULKTLS = function() return bulk(true) end,
              BULKP = function() return bulk_process(false) end,
              BULKTLSP = function() return bulk_process(true) end }
local which = (arg[1] or "all"):upper()
pki = make_pki()
if which == "BULK-WRITER" then
  bulk_writer(arg[2] == "tls", assert(math.tointeger(tonumber(arg[3])), "bulk-writer: port"))
  os.exit(0)
end
local list = which == "ALL" and { "W6", "W6TLS", "BULK", "BULKTLS", "BULKP", "BULKTLSP" }
             or { which }
local ok = true
for _, w in ipairs(list) do
  if not RUN[w] then
    io.stderr:write("usage: lua5.4 bench/tls.lua all|W6|W6TLS|BULK|BULKTLS|BULKP|BULKTLSP\n")
    os.exit(2)
  end
  ok = RUN[w]() and ok
end
if pki.dir then os.execute("rm -rf '" .. pki.dir .. "'") end
os.exit(ok and 0 or 1)
