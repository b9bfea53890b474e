-- A mutex guard released by cancellation (article 000 "Cancellation
-- safety", article 002). m:lock() returns a guard; held in a <close>
-- variable, it is released however the block ends, also when the task is
-- aborted in the middle of an await while holding it. What the drop does not
-- do is undo a half-done update: restore invariants with a <close> of your
-- own. And a task dropped while it WAITS for the lock never gets it.
-- Virtual clock: runs instantly, prints the same lines every time.
-- Run: lua5.4 examples/mutex_guard.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"

local function say(fmt, ...)
  print(string.format("[%4.2f s] " .. fmt, quench.now(), ...))
end

-- Two accounts whose sum must stay 100, behind one mutex.
local lock = quench.mutex()
local accounts = { a = 100, b = 0 }

local function total() return accounts.a + accounts.b end

-- Move money in two steps with a network round trip between them.
local function transfer(name, amount, undo_on_drop)
  local _guard <close> = lock:lock()
  say("%s: locked; debit a", name)
  accounts.a = accounts.a - amount
  local done = false
  local _undo <close> = quench.guard(function()
    if undo_on_drop and not done then
      accounts.a = accounts.a + amount             -- put the half-done step back
      say("%s: dropped half-way: debit undone", name)
    end
  end)
  quench.sleep(1)                                  -- e.g. ask the bank; the task may be dropped here
  accounts.b = accounts.b + amount
  done = true
  say("%s: credit b; done", name)
end

quench.run({ clock = "virtual", seed = 1 }, function()
  -- 1. Aborted while holding the guard: the lock is released by the drop...
  local t1 = quench.spawn(transfer, "transfer 1", 30, false)
  quench.sleep(0.5)
  t1:abort("client went away")
  say("main: t1 aborted; mutex still locked? %s", tostring(lock:is_locked()))
  -- ...but the half-done update stays: nothing undid the debit.
  say("main: total is %d (should be 100): a drop is not a rollback", total())
  accounts.a, accounts.b = 100, 0

  -- 2. With an undo in a <close>, the drop restores the invariant too.
  local t2 = quench.spawn(transfer, "transfer 2", 30, true)
  quench.sleep(0.5)
  t2:abort("client went away")
  say("main: t2 aborted; locked? %s; total %d", tostring(lock:is_locked()), total())

  -- 3. A waiter dropped while queued for the lock never holds it.
  local holder = quench.spawn(transfer, "transfer 3", 10, true)
  quench.yield()                                   -- transfer 3 takes the lock
  local ok = quench.timeout(0.2, lock.lock, lock)  -- queue behind it, give up after 0.2 s
  say("main: lock within 0.2 s? %s; locked by transfer 3 still? %s",
      tostring(ok), tostring(lock:is_locked()))
  holder:join()
  local _mine <close> = lock:lock()                -- free again: the dropped waiter took nothing
  say("main: locked it myself; total %d", total())
end)
