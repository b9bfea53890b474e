-- Graceful cancel vs abort (articles 002, 003, 004). h:abort() drops the task
-- at once: its <close> variables and defers run before abort returns, and
-- cannot wait. h:cancel() only requests: the task sees a Cancelled error at
-- its next await and at every later one, except inside quench.shield, where
-- it can await async cleanup (flush, ROLLBACK, "goodbye"). h:stop(grace)
-- escalates: cancel, wait up to `grace` seconds, then abort.
-- Virtual clock: runs instantly, prints the same lines every time.
-- Run: lua5.4 examples/graceful_cancel.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"

local function say(fmt, ...)
  print(string.format("[%4.2f s] " .. fmt, quench.now(), ...))
end

-- A worker whose cleanup needs to await: flush a buffer over the network.
local function worker(name, cleanup_seconds, use_shield)
  local _drop <close> = quench.guard(function() say("%s: <close> ran", name) end)
  local ok, err = pcall(quench.sleep, 3600)          -- the work; raises Cancelled
  say("%s: work interrupted: %s", name, tostring(err))
  local flush = function()
    quench.sleep(cleanup_seconds)
    say("%s: buffer flushed", name)
  end
  local fok, ferr = pcall(use_shield and quench.shield or function(f) return f() end, flush)
  if not fok then say("%s: flush failed: %s", name, tostring(ferr)) end
  if not ok then error(err, 0) end
end

quench.run({ clock = "virtual", seed = 1 }, function()
  -- 1. cancel + shield: the async cleanup runs to its end
  local h = quench.spawn(worker, "shielded", 0.5, true)
  quench.sleep(1)
  h:cancel("shutdown")
  say("cancel returned at once; task done yet? %s", tostring(h:done()))
  local ok, err = h:join()
  say("join: %s, %s", tostring(ok), tostring(err))

  -- 2. cancel without shield: the cleanup's own await raises Cancelled too
  h = quench.spawn(worker, "unshielded", 0.5, false)
  quench.sleep(1)
  h:cancel("shutdown")
  h:join()

  -- 3. stop(grace): a cleanup within the grace period is waited for...
  h = quench.spawn(worker, "quick", 0.5, true)
  quench.sleep(1)
  local t0 = quench.now()
  h:stop(2, "stop")
  say("stop(2) returned after %g s", quench.now() - t0)

  -- ...one that overruns it is aborted when the grace period ends
  h = quench.spawn(worker, "slow", 60, true)
  quench.sleep(1)
  t0 = quench.now()
  h:stop(2, "stop")
  say("stop(2) returned after %g s: the slow cleanup was aborted", quench.now() - t0)

  -- 4. abort: drop-time cleanup cannot wait; trying is a clear error
  h = quench.spawn(function()
    local _rollback <close> = quench.guard(function() quench.sleep(0.1) end)
    quench.sleep(3600)
  end)
  quench.sleep(1)
  h:abort("hard")
  local message = tostring(select(2, h:join())):gsub("^.-: quench", "quench")   -- drop the position
  say("abort with an awaiting cleanup fails: %s", message)
end)
