-- Cooperative cancellation of blocking work (article 002, "spawn_blocking").
-- quench.blocking(fn, ...) runs fn in its own Lua state on libuv's thread
-- pool, so the event loop keeps running meanwhile. Dropping the call (abort,
-- a timeout, a select loser) returns at once, but nothing can interrupt a
-- thread: the worker is only told, through quench.blocking_cancelled(), and
-- stops when it looks. A worker that never looks runs to its end; its
-- results are then discarded. quench.run waits for such stragglers.
-- Real clock (the work runs on real threads).
-- Run: lua5.4 examples/blocking_cancel.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"

if not quench.blocking then
  io.stderr:write("this quench has no quench.blocking (the blocking pool)\n")
  os.exit(1)
end

local function say(fmt, ...)
  io.stdout:write(string.format(fmt, ...), "\n")
  io.stdout:flush()
end

-- Runs in a worker: count primes below n, checking for cancellation now and
-- then; leave a note in `note` saying how it ended. (A worker function may
-- use globals and the quench module, no other upvalue.)
local function count_primes(n, note)
  local count, stopped = 0, false
  for k = 2, n do
    if k % 20000 == 0 and quench.blocking_cancelled() then
      stopped = true
      break
    end
    local prime = true
    for d = 2, math.floor(math.sqrt(k)) do
      if k % d == 0 then prime = false; break end
    end
    if prime then count = count + 1 end
  end
  local f = assert(io.open(note, "w"))
  f:write(stopped and "stopped early: saw blocking_cancelled()" or "ran to the end")
  f:close()
  return count
end

-- Runs in a worker: CPU work that never checks for cancellation.
local function stubborn(seconds, note)
  local t0 = os.clock()
  while os.clock() - t0 < seconds do end
  local f = assert(io.open(note, "w"))
  f:write("finished anyway")
  f:close()
  return "a result nobody will see"
end

local function read_note(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Wait (awaiting, so the loop runs) until the worker left its note. The
-- file exists a moment before its text is written: wait for the text.
local function wait_note(path)
  for _ = 1, 1000 do
    local s = read_note(path)
    if s and s ~= "" then return s end
    quench.sleep(0.01)
  end
  return "no note after 10 s"
end

quench.run(function()
  local note = os.tmpname()
  os.remove(note)

  -- 1. Small work finishes: results come back, copied.
  local primes = quench.blocking(count_primes, 1000, note)
  say("primes below 1000: %d (%s)", primes, read_note(note))
  os.remove(note)

  -- 2. Big work under a timeout: the loop stays responsive meanwhile, the
  --    timeout returns at once, and the worker stops at its next check.
  local ticks = 0
  local ticker = quench.spawn(function()
    while true do quench.sleep(0.01); ticks = ticks + 1 end
  end)
  local ok, err = quench.timeout(0.3, quench.blocking, count_primes, 1e12, note)
  say("timeout: %s, %s", tostring(ok), tostring(err))
  say("the event loop ran during the blocking work: %s", tostring(ticks > 5))
  ticker:abort()
  say("worker: %s", wait_note(note))
  os.remove(note)

  -- 3. A worker that never checks: abort returns at once, the thread runs on
  --    and its result is discarded.
  local h = quench.spawn(quench.blocking, stubborn, 0.3, note)
  quench.sleep(0.05)
  h:abort("not needed")
  say("aborted: %s; the worker has not finished yet: %s",
      tostring(select(2, h:join())), tostring(read_note(note) == nil))
  say("worker: %s (its result was dropped)", wait_note(note))
  os.remove(note)
end)
say("done")
