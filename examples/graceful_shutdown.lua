-- Graceful shutdown on SIGINT/SIGTERM, the pattern of docs/signals.md:
--   first signal: cancel the root token; workers stop at their next await
--   and run their async cleanup (shielded); a grace period bounds it, then
--   whatever is left is aborted; a final flush runs on the way out.
--   second signal: abort at once.
-- Exit status: 0 clean shutdown, 1 something had to be aborted, 130 when a
-- second signal forced it.
-- Run: lua5.4 examples/graceful_shutdown.lua   and press Ctrl-C (twice to force).
local quench = require "quench"

local GRACE = tonumber(os.getenv("GRACE")) or 2        -- seconds for async cleanup
local SLOW_WORKER = os.getenv("SLOW_WORKER") == "1"    -- a worker whose cleanup overruns

local function say(...)
  io.stdout:write(table.concat({ ... }, " "), "\n")
  io.stdout:flush()
end

local function worker(id)
  local done = 0
  while true do
    local ok = pcall(quench.sleep, 0.05)               -- "work"; raises Cancelled on shutdown
    if not ok then break end
    done = done + 1
  end
  -- async cleanup: the cancel is still pending, so shield it
  quench.shield(function()
    local t = (SLOW_WORKER and id == 3) and 3600 or 0.1 * id
    quench.sleep(t)
    say("worker " .. id .. ": flushed after " .. done .. " jobs")
  end)
end

local status = quench.run(function()
  local root = quench.token()
  local workers = {}
  for id = 1, 3 do
    workers[id] = root:spawn(worker, id)
    workers[id]:name("worker " .. id)
  end
  -- announced from a task, so it prints once main waits below: the signal
  -- handlers are installed by then
  quench.spawn(say, "ready: waiting for SIGINT or SIGTERM")
  local first = quench.select(quench.signal_op("SIGINT"), quench.signal_op("SIGTERM"))
  say("shutdown: " .. (first == 1 and "SIGINT" or "SIGTERM") .. ", grace " .. GRACE .. " s")
  root:cancel("shutdown")

  local forced = false
  local second = quench.spawn(function()
    quench.select(quench.signal_op("SIGINT"), quench.signal_op("SIGTERM"))
    forced = true
    say("second signal: aborting now")
    for _, w in ipairs(workers) do w:abort("forced") end
  end)

  local clean = true
  local deadline = quench.now() + GRACE
  for id, w in ipairs(workers) do
    local ok = quench.deadline(deadline, w:join_op())
    if not ok then
      clean = false
      say("worker " .. id .. ": did not finish in time, aborting")
      w:abort("grace period over")
    end
  end
  second:abort()
  say("flush: all workers stopped" .. ((clean and not forced) and "" or " (some aborted)"))
  if forced then return 130 end
  return clean and 0 or 1
end)
say("exit " .. status)
os.exit(status)
