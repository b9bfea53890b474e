-- Certificates for the TLS specs, made at test time with the `openssl`
-- command in a fresh temporary directory: a test CA; a server certificate
-- for localhost and 127.0.0.1 (signed by the CA); one for another name;
-- an expired one (`-days -1`: its notAfter is a day before its notBefore);
-- a self-signed one; a client certificate (signed by the CA) and one
-- signed by a second, untrusted CA. EC P-256 keys: quick to make.
-- Also: starting and stopping peer programs (openssl s_server, s_client,
-- curl) by PID, on free loopback ports.
local M = {}

-- Peer programs run without the sanitizer runtimes scripts/test.sh
-- preloads into lua5.4 (curl hangs at its start with libasan preloaded,
-- and LeakSanitizer would judge openssl too).
local function sh(cmd)
  local ok = os.execute("env -u LD_PRELOAD " .. cmd .. " >/dev/null 2>&1")
  if not ok then error("tls_pki: command failed: " .. cmd, 2) end
end

local function have(prog)
  return os.execute("command -v " .. prog .. " >/dev/null 2>&1") == true
end

-- Fail loudly (CI installs them: scripts/deps.sh) rather than skip.
function M.require_tools(...)
  for _, p in ipairs({ ... }) do
    if not have(p) then error("the TLS specs need `" .. p .. "` (scripts/deps.sh installs it)", 2) end
  end
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
M.read = read

-- Make every certificate; returns a table of paths (and the directory).
function M.make()
  M.require_tools("openssl")
  local p = io.popen("mktemp -d /tmp/quench-tls.XXXXXX")
  local dir = p:read("l")
  p:close()
  local function f(n) return dir .. "/" .. n end
  local key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
  local function ca(name, cn)
    sh(("openssl req -x509 %s -keyout %s -out %s -days 30 -subj '/CN=%s'")
       :format(key, f(name .. ".key"), f(name .. ".pem"), cn))
  end
  local function leaf(name, cn, san, signer, days)
    local ext = f(name .. ".ext")
    local e = assert(io.open(ext, "w"))
    e:write("subjectAltName=" .. san .. "\n")
    if name:match("^client") then e:write("extendedKeyUsage=clientAuth\n") end
    e:close()
    sh(("openssl req %s -keyout %s -out %s -subj '/CN=%s'")
       :format(key, f(name .. ".key"), f(name .. ".csr"), cn))
    sh(("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -days %d -extfile %s -out %s")
       :format(f(name .. ".csr"), f(signer .. ".pem"), f(signer .. ".key"), days, ext,
               f(name .. ".pem")))
  end
  ca("ca", "quench test CA")
  ca("rogue", "quench rogue CA")
  leaf("server", "localhost", "DNS:localhost,IP:127.0.0.1", "ca", 30)
  leaf("other", "other.example", "DNS:other.example", "ca", 30)
  leaf("wild", "*.wild.example", "DNS:*.wild.example", "ca", 30)
  leaf("expired", "localhost", "DNS:localhost,IP:127.0.0.1", "ca", -1)
  leaf("client", "quench client", "DNS:client.example", "ca", 30)
  leaf("rogue_client", "rogue client", "DNS:rogue.example", "rogue", 30)
  sh(("openssl req -x509 %s -keyout %s -out %s -days 30 -subj '/CN=localhost' " ..
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1")
     :format(key, f("self.key"), f("self.pem")))
  -- an encrypted copy of the server key, password "sesame"
  sh(("openssl pkey -in %s -aes256 -passout pass:sesame -out %s")
     :format(f("server.key"), f("server_enc.key")))
  local t = { dir = dir }
  for _, n in ipairs({ "ca", "rogue", "server", "other", "wild", "expired", "client",
                       "rogue_client", "self" }) do
    t[n] = { cert = f(n .. ".pem"), key = f(n .. ".key") }
  end
  t.server_enc_key = f("server_enc.key")
  return t
end

function M.remove(pki)
  if pki and pki.dir and pki.dir:match("^/tmp/quench%-tls%.") then
    os.execute("rm -rf '" .. pki.dir .. "'")
  end
end

-- A free loopback port: bind port 0, read it, close (the peer binds it
-- right after; the kernel does not hand out a just-freed ephemeral port
-- again at once).
function M.free_port(quench)
  local s = assert(quench.tcp.listen("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

-- `n` distinct free loopback ports: all are bound at once before any is
-- let go, so two calls in a row cannot hand out the same port.
function M.free_ports(quench, n)
  local held, ports = {}, {}
  for i = 1, n do
    held[i] = assert(quench.tcp.listen("127.0.0.1", 0))
    ports[i] = select(2, held[i]:getsockname())
  end
  for _, s in ipairs(held) do s:close() end
  return table.unpack(ports, 1, n)
end

-- Wait (polling, real clock) until something accepts on 127.0.0.1:port.
-- With `proc` (the server's quench process), a server that exits first
-- ends the wait at once with its exit status instead of after `seconds`.
function M.wait_port(quench, port, seconds, proc)
  local deadline = quench.now() + (seconds or 10)
  while quench.now() < deadline do
    local c = quench.tcp.connect("127.0.0.1", port)
    if c then
      c:close()
      return true
    end
    if proc then
      local exited, status, signal = quench.timeout(0.02, proc.wait, proc)
      if exited then
        error(("the server for 127.0.0.1:%d exited (status %d, signal %d) before it listened")
              :format(port, status, signal))
      end
    else
      quench.sleep(0.02)
    end
  end
  error("nothing listens on 127.0.0.1:" .. port)
end

-- Start a peer program (a quench process, stdio as given), stopped by its
-- PID with SIGKILL when the caller's `<close>` variable goes.
function M.spawn(quench, file, args, opts)
  opts = opts or {}
  local p = assert(quench.process.spawn(file, {
    args = args, stdin = opts.stdin or "ignore", stdout = opts.stdout or "ignore",
    stderr = opts.stderr or "ignore", kill_on_drop = true, env = { LD_PRELOAD = false },
  }))
  return p
end

return M
