-- A service loop stopped by a token tree (article 002 "CancellationToken",
-- article 003). A token is a flag in a tree: cancelling one cancels its
-- whole subtree and never its parent or siblings. Each loop below races its
-- work against its token (select on t:cancelled_op()), so it decides how to
-- wind down and may still await its cleanup; a task bound with t:spawn is
-- cancelled gracefully instead (Cancelled raised at its await).
-- Virtual clock: runs instantly, prints the same lines every time.
-- Run: lua5.4 examples/token_tree.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"

local function say(fmt, ...)
  print(string.format("[%4.2f s] " .. fmt, quench.now(), ...))
end

-- A service loop: one unit of work per period until its token is cancelled.
local function service(name, token, period)
  local rounds = 0
  while true do
    local which = quench.select(token:cancelled_op(), quench.sleep_op(period))
    if which == 1 then break end
    rounds = rounds + 1
  end
  quench.sleep(0.05)                   -- async cleanup: allowed, nothing was raised here
  say("%s: stopped after %d rounds (%s)", name, rounds, token:reason())
end

quench.run({ clock = "virtual", seed = 1 }, function()
  local root = quench.token()            -- the whole server
  local ingest = root:child()            -- one subsystem...
  local conn1, conn2 = ingest:child(), ingest:child()   -- ...and its connections
  local metrics = root:child()

  local tasks = {
    quench.spawn(service, "ingest", ingest, 0.1),
    quench.spawn(service, "conn 1", conn1, 0.1),
    quench.spawn(service, "conn 2", conn2, 0.1),
    quench.spawn(service, "metrics", metrics, 0.25),
  }
  -- Bound to the token: gets Cancelled at its await, cleans up in a shield.
  tasks[#tasks + 1] = root:spawn(function()
    local ok, err = pcall(quench.sleep, 3600)
    quench.shield(quench.sleep, 0.05)
    say("audit log: flushed (%s)", tostring(err))
    if not ok then error(err, 0) end
  end)

  quench.sleep(0.33)
  say("main: client 1 disconnects: cancel conn1 only")
  conn1:cancel("client went away")
  quench.sleep(0.3)
  say("main: shutdown: cancel the root")
  root:cancel("shutdown")
  for _, h in ipairs(tasks) do h:join() end
  say("main: everything stopped; ingest cancelled: %s, conn1 reason kept: %s",
      tostring(ingest:is_cancelled()), conn1:reason())
end)
