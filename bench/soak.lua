-- Server soak: the memory a quench TCP server keeps per connection it has
-- served, after warm-up. The server is the idiom the docs teach: an accept
-- loop inside a scope (or a detaching task set), a task per connection,
-- `<close>` on the stream. Clients connect, send a request line, read the
-- answer and close, CLIENTS at a time.
--
--   LUA_CPATH='./build/?.so;;' lua5.4 bench/soak.lua [scope|set] [KEY=VALUE ...]
--
-- prints one line, in the format of bench/workloads.lua:
--   peer=quench workload=soak_scope value=N unit=B check=ok|FAIL [k=v ...]
-- value: Lua heap bytes still reachable per connection served after the
-- warm-up (WARMUP connections), measured over the next CONNS connections,
-- after full collections, with no connection open. A server that forgets
-- what it served prints about 0. Extras: rss_bytes (the process's resident
-- memory per connection, noisier), core_blocks (the C core's live blocks
-- per connection), served, elapsed_s.
-- Sizes (environment, then KEY=VALUE): SOAK_CONNS=20000 SOAK_WARMUP=2000
-- SOAK_CLIENTS=50.

local cfg = { SOAK_CONNS = 20000, SOAK_WARMUP = 2000, SOAK_CLIENTS = 50, holder = "scope" }
for k in pairs(cfg) do
  local e = os.getenv(k)
  if e then cfg[k] = math.tointeger(tonumber(e)) or e end
end
for i = 1, #arg do
  local k, v = arg[i]:match("^([%w_]+)=(.*)$")
  if k then
    cfg[k:upper()] = math.tointeger(tonumber(v)) or v
  else
    cfg.holder = arg[i]:lower()
  end
end
if cfg.holder ~= "scope" and cfg.holder ~= "set" then
  io.stderr:write("usage: lua5.4 bench/soak.lua [scope|set] [SOAK_CONNS=N ...]\n")
  os.exit(2)
end

local quench = require "quench"

local function rss()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")) * 1024
end

local function heap()
  collectgarbage("collect")
  collectgarbage("collect")
  return collectgarbage("count") * 1024
end

-- One connection's work on the server side.
local function serve(stream)
  local conn <close> = stream
  local req = conn:read("l")
  if req then conn:write("ok ", req, "\n") end
end

-- Accept until the server is closed, a task per connection held by `holder`.
local function accept_loop(server, spawn_into)
  while true do
    local stream = server:accept()
    if not stream then return end             -- ECANCELED: closed by the main task
    spawn_into(serve, stream)
  end
end

local function run_server(server)
  if cfg.holder == "scope" then
    quench.scope(function(s)
      accept_loop(server, function(...) return s:spawn(...) end)
    end)
  else
    local set <close> = quench.task_set({ detach = true })
    accept_loop(server, function(...) return set:spawn(...) end)
    set:join_next()                           -- the last handlers finish
  end
end

-- n connections, `clients` at a time; returns how many got the right answer.
local function load(port, n, clients)
  local next_id, good = 0, 0
  local hs = {}
  for c = 1, clients do
    hs[c] = quench.spawn(function()
      while next_id < n do
        next_id = next_id + 1
        local id = tostring(next_id)
        local conn <close> = assert(quench.tcp.connect("127.0.0.1", port))
        conn:write(id, "\n")
        if conn:read("l") == "ok " .. id then good = good + 1 end
      end
    end)
  end
  for c = 1, clients do
    local ok, err = hs[c]:join()
    if not ok then error(err, 0) end
  end
  return good
end

local t0 = os.time()
local r = quench.run(function()
  local server = assert(quench.tcp.listen("127.0.0.1", 0))
  local _, port = server:getsockname()
  local srv = quench.spawn(run_server, server)
  local good = load(port, cfg.SOAK_WARMUP, cfg.SOAK_CLIENTS)
  quench.sleep(0.05)                           -- the last handlers end
  local heap0, rss0, blocks0 = heap(), rss(), quench.stats().live_blocks
  good = good + load(port, cfg.SOAK_CONNS, cfg.SOAK_CLIENTS)
  quench.sleep(0.05)
  local heap1, rss1, blocks1 = heap(), rss(), quench.stats().live_blocks
  server:close()
  local ok, err = srv:join()
  if not ok then error(err, 0) end
  local n = cfg.SOAK_CONNS
  return { heap = (heap1 - heap0) / n, rss = (rss1 - rss0) / n, blocks = (blocks1 - blocks0) / n,
           good = good, served = cfg.SOAK_WARMUP + n }
end)

local check = r.good == r.served
io.write(string.format("peer=quench workload=soak_%s value=%.0f unit=B check=%s core_blocks=%.3f "
  .. "elapsed_s=%d rss_bytes=%.0f served=%d\n", cfg.holder, r.heap, check and "ok" or "FAIL",
  r.blocks, os.time() - t0, r.rss, r.served))
os.exit(check and 0 or 1)
