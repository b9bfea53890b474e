-- Descriptor soak: the server idioms docs/io.md teaches (a task per
-- connection, a timeout per request, `<close>` on the stream) against
-- clients that misbehave, round after round, in one process. After every
-- round the server's descriptors must be back to the baseline, while the
-- clients that stopped reading still hold their own ends open: what the
-- server holds is bounded by the request timeout plus the stream's linger.
--
-- Clients of each round, CLIENTS of them, in turn:
--   pipeline  sends PIPELINE requests in one write, reads every answer, closes
--   vanish    sends half a request (no "\n") and closes
--   reset     sends requests, reads part of the first answer, close_reset()
--   stuck     sends STUCK_REQUESTS requests and never reads (nor closes, until
--             the server has let go of it: then the round ends)
--
-- Run:  LUA_CPATH='./build/?.so;;' lua5.4 bench/soak_fds.lua [rounds [clients]]
-- Prints one line (the format of bench/workloads.lua) and exits 0 (ok) or 1.
-- spec/regress/soak_fds_spec.lua runs it small, with require.
local quench = require "quench"
local tcp, fs = quench.tcp, quench.fs

local M = {}

local function fd_count() return #assert(fs.readdir("/proc/self/fd")) end

-- Sleep until cond() holds, at most `secs`: whether it held.
local function wait_until(cond, secs)
  local t0 = quench.now()
  while not cond() do
    if quench.now() - t0 > secs then return false end
    quench.sleep(0.01)
  end
  return true
end

-- One connection, as the docs teach it.
local function handle(stream, cfg, stats)
  local conn <close> = stream
  while true do
    local ok, line = quench.timeout(cfg.request_timeout, conn.read, conn, "l")
    if not ok or line == nil then break end          -- timed out, EOF or an error
    local answer = ("a"):rep(cfg.answer_size - 1) .. "\n"
    if not quench.timeout(cfg.request_timeout, conn.write, conn, answer) then break end
  end
  stats.handled = stats.handled + 1
end

local function serve(server, cfg, stats)
  while true do
    local s = server:accept()
    if not s then return end
    stats.accepted = stats.accepted + 1
    quench.spawn(handle, s, cfg, stats)
  end
end

local KINDS = { "pipeline", "vanish", "reset", "stuck" }

-- A client of `kind`; `open` counts the client ends open in this process.
local function client(kind, port, cfg, round)
  local c <close> = assert(tcp.connect("127.0.0.1", port))
  round.open = round.open + 1
  if kind == "pipeline" then
    c:write(("q\n"):rep(cfg.pipeline))
    for _ = 1, cfg.pipeline do assert(c:read(cfg.answer_size), "an answer is missing") end
  elseif kind == "vanish" then
    c:write("half a requ")
  elseif kind == "reset" then
    c:write(("q\n"):rep(cfg.pipeline))
    c:read(cfg.answer_size // 2)
    c:close_reset()
  else                                                -- stuck
    c:write(("q\n"):rep(cfg.stuck_requests))
    round.stuck_sent = round.stuck_sent + 1
    round.release:recv()                              -- holds its end open, reading nothing
  end
  c:close()
  round.open = round.open - 1
end

local DEFAULTS = {
  rounds = 5, clients = 40, pipeline = 8, stuck_requests = 200, answer_size = 64 * 1024,
  request_timeout = 0.2, linger = 0.2, settle = 10,
}

-- Run the soak: a table of results (ok, rounds, fds_base, fds_max, ...).
function M.run(opts)
  local cfg = {}
  for k, v in pairs(DEFAULTS) do cfg[k] = (opts or {})[k] or v end
  local t0 = os.clock()
  local result = quench.run({ clock = "real" }, function()
    local started = quench.now()
    local stats = { accepted = 0, handled = 0 }
    local server <close> = assert(tcp.listen("127.0.0.1", 0, { linger = cfg.linger }))
    local _, port = server:getsockname()
    local acceptor = quench.spawn(serve, server, cfg, stats)
    local base = fd_count()                           -- the server, listening, idle
    local res = { ok = true, rounds = 0, fds_base = base, fds_max = base }
    for r = 1, cfg.rounds do
      local round = { open = 0, stuck_sent = 0, release = quench.channel() }
      local nstuck, tasks = 0, {}
      for i = 1, cfg.clients do
        local kind = KINDS[(i - 1) % #KINDS + 1]
        if kind == "stuck" then nstuck = nstuck + 1 end
        tasks[i] = quench.spawn(client, kind, port, cfg, round)
      end
      local want = stats.accepted + cfg.clients
      -- the server lets go of every connection while the stuck clients
      -- still hold theirs: its descriptors are back to the baseline
      local released = wait_until(function()
        local n = fd_count()
        if n > res.fds_max then res.fds_max = n end
        return round.stuck_sent == nstuck and stats.accepted == want
          and stats.handled == want and n - round.open == base
      end, cfg.settle)
      if not released then
        res.ok = false
        res.why = string.format("round %d: server holds %d descriptors over its baseline "
          .. "(accepted %d, handled %d of %d)", r, fd_count() - round.open - base,
          stats.accepted, stats.handled, want)
        round.release:close()
        break
      end
      round.release:close()                            -- the stuck clients close now
      for _, t in ipairs(tasks) do assert(t:join()) end
      if not wait_until(function() return fd_count() == base end, cfg.settle) then
        res.ok = false
        res.why = string.format("round %d: %d descriptors over the baseline after it",
          r, fd_count() - base)
        break
      end
      res.rounds = r
    end
    res.connections = stats.accepted
    res.fds_left = fd_count() - base
    res.elapsed_s = quench.now() - started
    acceptor:abort()
    return res
  end)
  result.cpu_s = os.clock() - t0
  return result
end

-- As a script: one result line.
if arg and arg[0] and arg[0]:match("soak_fds%.lua$") then
  local r = M.run({ rounds = tonumber(arg[1]), clients = tonumber(arg[2]) })
  io.write(string.format("peer=quench workload=soak_fds value=%d unit=fds_left check=%s "
    .. "rounds=%d connections=%d fds_base=%d fds_max=%d elapsed_s=%.3f cpu_s=%.3f%s\n",
    r.fds_left, r.ok and "ok" or "FAIL", r.rounds, r.connections, r.fds_base, r.fds_max,
    r.elapsed_s, r.cpu_s, r.why and (" why=" .. r.why:gsub("%s", "_")) or ""))
  os.exit(r.ok and 0 or 1)
end

return M
