-- A database transaction rolled back when its task is dropped (article 002:
-- "a sqlx::Transaction rolls back on drop"), with SQLite (luasql.sqlite3,
-- Debian: lua-sql-sqlite3). The transaction is a <close> value that rolls
-- back unless committed; the slow part of each row runs on the blocking pool
-- (quench.blocking), which is an await, so the import can be dropped
-- between rows. Aborting the task runs the ROLLBACK before abort returns:
-- the rows it had inserted are gone, and the next transaction starts clean.
-- Real clock (the work runs on real threads); the output is the same every run.
-- Run: lua5.4 examples/sqlite_rollback.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"

if not quench.blocking then
  io.stderr:write("this quench has no quench.blocking (the blocking pool)\n")
  os.exit(1)
end
local have_driver, driver = pcall(require, "luasql.sqlite3")
if not have_driver then
  io.stderr:write("luasql.sqlite3 is missing (Debian: apt-get install lua-sql-sqlite3)\n")
  os.exit(1)
end

local function say(fmt, ...)
  io.stdout:write(string.format(fmt, ...), "\n")
  io.stdout:flush()
end

-- Runs in a worker thread: an expensive checksum of one item.
local function checksum(item, rounds)
  local h = 0
  for r = 1, rounds do
    for i = 1, #item do h = (h * 31 + item:byte(i) + r) % 2147483647 end
  end
  return h
end

-- BEGIN now; ROLLBACK at scope exit unless commit() ran.
local function begin(conn, label)
  assert(conn:execute("BEGIN"))
  local tx = { committed = false }
  function tx.commit()
    assert(conn:execute("COMMIT"))
    tx.committed = true
  end
  return setmetatable(tx, { __close = function()
    if not tx.committed then
      assert(conn:execute("ROLLBACK"))
      say("%s: ROLLBACK (the task was dropped)", label)
    end
  end })
end

local function count(conn)
  local cur = assert(conn:execute("SELECT count(*) FROM orders"))
  local n = tonumber(cur:fetch())
  cur:close()
  return n
end

-- Insert every item in one transaction; report each row on `progress`.
local function import(conn, label, items, progress)
  local tx <close> = begin(conn, label)
  for i, item in ipairs(items) do
    local sum = quench.blocking(checksum, item, 20000)   -- an await: the task can be dropped here
    assert(conn:execute(string.format(
      "INSERT INTO orders (batch, item, checksum) VALUES ('%s', '%s', %d)", label, item, sum)))
    say("%s: inserted %s", label, item)
    if progress then progress:send(i) end
  end
  tx.commit()
  say("%s: COMMIT", label)
end

local path = os.tmpname()
local env = assert(driver.sqlite3())
local conn = assert(env:connect(path))
assert(conn:execute("CREATE TABLE orders (batch TEXT, item TEXT, checksum INTEGER)"))

quench.run(function()
  -- 1. Not dropped: committed.
  import(conn, "batch 1", { "apples", "pears", "plums" })
  say("rows: %d", count(conn))

  -- 2. Dropped after two rows: those rows are rolled back.
  local progress = quench.channel()
  local h = quench.spawn(import, conn, "batch 2", { "figs", "dates", "limes", "kiwis" }, progress)
  while progress:recv() < 2 do end       -- two rows are in; the task now waits for the third checksum
  h:abort("user pressed cancel")
  say("batch 2: task %s", tostring(select(2, h:join())))
  say("rows: %d (batch 2 left nothing behind)", count(conn))

  -- 3. A timeout around the import drops it the same way. Two items: the
  -- import cannot end within one turn of the loop (its second checksum is
  -- only started once the first is back), so even on a loaded machine the
  -- 0.1 ms deadline is due first and the branch, not yet done, is dropped.
  local ok = quench.timeout(0.0001, import, conn, "batch 3", { "grapes", "cherries" })
  say("batch 3 in time: %s; rows: %d", tostring(ok), count(conn))

  -- 4. The connection is clean: the next transaction works.
  import(conn, "batch 4", { "melons" })
  say("rows: %d", count(conn))
end)

conn:close()
env:close()
os.remove(path)
