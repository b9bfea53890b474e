-- Timeouts (articles 000, 001, 003): quench.timeout(s, fn, ...) races fn
-- against a sleep; if the sleep wins, fn is dropped at its current await
-- (its cleanup runs) and timeout returns false, a timeout value. It is
-- select(fn, sleep_op(s)) in one call, and nothing is spawned: fn runs in
-- the caller's task (article 000 says tokio's timeout spawns; it does not).
-- Virtual clock: runs instantly, prints the same lines every time.
-- Run: lua5.4 examples/timeout.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"

local function say(fmt, ...)
  print(string.format("[%5.2f s] " .. fmt, quench.now(), ...))
end

-- A slow network request.
local function fetch_data(seconds)
  local _ <close> = quench.guard(function() say("fetch_data: connection closed") end)
  quench.sleep(seconds)
  return "Data arrived"
end

local function report(ok, data)
  if ok then
    say("Got data: %s", data)
  else
    say("Timed out (%s). The fetch was dropped.", tostring(data))
  end
end

quench.run({ clock = "virtual", seed = 1 }, function()
  say("fetch taking 10 s, 2 s deadline")
  report(quench.timeout(2, fetch_data, 10))

  say("fetch taking 1 s, 2 s deadline")
  report(quench.timeout(2, fetch_data, 1))

  -- nothing is spawned: the branch runs as part of this task
  local me = quench.current()
  quench.timeout(1, function() say("inside the branch, same task: %s", tostring(quench.current() == me)) end)

  -- nested timeouts: the earliest deadline wins
  local t0 = quench.now()
  local outer_ok, inner_ok = quench.timeout(5, function()
    return quench.timeout(1, fetch_data, 10)
  end)
  say("nested 5 s around 1 s: outer %s, inner %s, after %g s",
    outer_ok and "finished" or "timed out", inner_ok and "finished" or "timed out", quench.now() - t0)

  -- a spawned task under a deadline: its <close> handle aborts it on the way out
  do
    local h <close> = quench.spawn(fetch_data, 60)
    local joined = quench.timeout(3, h.join, h)
    say("joined a 60 s task within 3 s: %s; leaving the scope aborts it", tostring(joined))
  end
  say("done")
end)
