-- Racing (articles 000, 001, 004): quench.select runs its branches
-- concurrently; when the first one finishes, every other branch is dropped,
-- and its cleanup has run, before select returns. Also: select is fair (a
-- random start each time, seeded), select_biased polls in argument order;
-- tokio's select! is likewise random unless `biased;` (there is no
-- `biased(false)`, whatever article 001 says).
-- Virtual clock: runs instantly, prints the same lines every time.
-- Run: lua5.4 examples/race.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"

local function say(fmt, ...)
  print(string.format("[%4.2f s] " .. fmt, quench.now(), ...))
end

local function task(name, seconds)
  return function()
    local _ <close> = quench.guard(function() say("%s task: cleanup ran", name) end)
    quench.sleep(seconds)
    say("%s task completed", name)
    return name
  end
end

quench.run({ clock = "virtual", seed = 1 }, function()
  -- 1. fast vs slow: the slow one is dropped at its sleep and never prints
  local i, winner = quench.select(task("Fast", 0.1), task("Slow", 0.5))
  say("select returned branch %d: %s won", i, winner)
  quench.sleep(1)
  say("(a second later: the slow task never completed)")

  -- 2. a parent that is itself dropped drops both of its children
  local parent = quench.spawn(function()
    quench.select(task("Left", 5), task("Right", 6))
  end)
  quench.sleep(1)
  say("aborting the parent in the middle of its race")
  parent:abort()

  -- 3. fairness: two channels that are always ready
  local a, b = quench.channel(), quench.channel()
  for n = 1, 40 do a:send(n); b:send(n) end
  local biased, fair = { 0, 0 }, { 0, 0 }
  for _ = 1, 20 do
    local k = quench.select_biased(a:recv_op(), b:recv_op())
    biased[k] = biased[k] + 1
  end
  for _ = 1, 20 do
    local k = quench.select(a:recv_op(), b:recv_op())
    fair[k] = fair[k] + 1
  end
  say("select_biased: the first branch won %d of 20 (the second starves)", biased[1])
  say("select: both branches won: %s", (fair[1] > 0 and fair[2] > 0) and "yes" or "no")
  say("messages left: %d of 80 (a losing receive loses nothing)", a:len() + b:len())
end)
