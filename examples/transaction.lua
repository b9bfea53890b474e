-- A transaction under cancellation (article 002): the commit-or-rollback
-- cleanup must run exactly once, wherever the task is stopped. A <close>
-- value rolls back unless committed (sqlx's Transaction drop), and abort runs
-- it before returning, so no transaction is left open. A rollback that must
-- await (send ROLLBACK to the server) cannot run at drop time; a graceful
-- cancel lets the task run it under quench.shield instead.
-- Virtual clock: runs instantly, prints the same lines every time.
-- Run: lua5.4 examples/transaction.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"

local function say(fmt, ...)
  print(string.format("[%5.2f s] " .. fmt, quench.now(), ...))
end

local open_transactions = 0

local function begin(label)
  open_transactions = open_transactions + 1
  local tx = { state = "open" }
  function tx.commit()
    quench.sleep(0.5)                  -- the COMMIT round trip
    tx.state = "committed"
    open_transactions = open_transactions - 1
    say("%s: COMMIT", label)
  end
  function tx.rollback()
    quench.sleep(0.2)                  -- the ROLLBACK round trip: an await
    tx.state = "rolled back"
    open_transactions = open_transactions - 1
    say("%s: ROLLBACK (awaited the server)", label)
  end
  return setmetatable(tx, { __close = function()
    if tx.state == "open" then
      tx.state = "rolled back"
      open_transactions = open_transactions - 1
      say("%s: ROLLBACK (on drop)", label)
    end
  end })
end

-- INSERT 1 s, UPDATE 1 s, COMMIT 0.5 s, then 1 s to answer the client.
local function transfer(label)
  local tx <close> = begin(label)
  quench.sleep(1)
  quench.sleep(1)
  tx.commit()
  quench.sleep(1)
end

quench.run({ clock = "virtual", seed = 1 }, function()
  for _, at in ipairs({ 0.5, 2.25, 3 }) do
    local label = string.format("abort at +%gs", at)
    local t0 = quench.now()
    local h = quench.spawn(transfer, label)
    quench.sleep(at)
    h:abort("client went away")
    h:abort("twice")                   -- idempotent: nothing runs again
    say("%s: task done, %d transaction(s) open", label, open_transactions)
    quench.sleep(t0 + 4 - quench.now())
  end

  -- graceful: cancel, and the task runs the awaiting rollback under shield
  local h = quench.spawn(function()
    local tx <close> = begin("cancelled")
    local ok, err = pcall(function()
      quench.sleep(1)
      quench.sleep(1)
      tx.commit()
    end)
    if not ok then
      quench.shield(tx.rollback)       -- Cancelled would be raised from its await otherwise
      error(err, 0)
    end
    quench.sleep(1)
  end)
  quench.sleep(1.5)
  h:cancel("shutdown")
  local _, err = h:join()
  say("cancelled task joined: %s", tostring(err))
  say("done: %d transaction(s) open", open_transactions)
end)
