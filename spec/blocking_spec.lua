-- The blocking pool (docs/io.md "Blocking pool"): quench.blocking runs a Lua
-- function in its own Lua state on libuv's thread pool. Real clock: the
-- workers run on real threads.
local quench = require "quench"

local function T(fn)
  return quench.test(fn, { clock = "real" })
end

local function tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

local function slurp(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Wait (awaiting) until pred() or `limit` seconds; returns pred()'s last value.
local function wait_until(pred, limit)
  local deadline = quench.now() + (limit or 10)
  while not pred() and quench.now() < deadline do quench.sleep(0.005) end
  return pred()
end

-- A worker that writes `started`, spins until it is cancelled (or a long
-- deadline), spins `linger` more CPU seconds, then writes why it stopped.
local function cooperative(started, done, linger)
  local f = assert(io.open(started, "w"))
  f:close()
  local deadline = os.time() + 30
  local why = "deadline"
  while os.time() < deadline do
    if quench.blocking_cancelled() then
      why = "cancelled"
      break
    end
  end
  local t0 = os.clock()
  while os.clock() - t0 < (linger or 0) do end
  f = assert(io.open(done, "w"))
  f:write(why)
  f:close()
  return why
end

describe("quench.blocking", function()
  it("returns the function's results, copied back", T(function()
    local r = table.pack(quench.blocking(function(a, b, t)
      return a + b, a / b, nil, t.s .. "!", { n = t.list[2], deep = { { true } } }, false
    end, 7, 2, { s = "hi", list = { "x", "y" } }))
    assert.are.equal(6, r.n)
    assert.are.equal(9, r[1])
    assert.are.equal("integer", math.type(r[1]))
    assert.are.equal(3.5, r[2])
    assert.is_nil(r[3])
    assert.are.equal("hi!", r[4])
    assert.are.same({ n = "y", deep = { { true } } }, r[5])
    assert.is_false(r[6])
  end))

  it("keeps integers and floats apart, and strings byte for byte", T(function()
    local bytes = "\0\1\255 zero\0inside"
    local a, b, c, d = quench.blocking(function(i, f, s, big)
      return math.type(i), math.type(f), s, big
    end, 3, 3.0, bytes, math.maxinteger)
    assert.are.same({ "integer", "float", bytes, math.maxinteger }, { a, b, c, d })
  end))

  it("runs each call in a fresh state with the standard libraries", T(function()
    quench.blocking(function() leaked_global = 1 end)  -- luacheck: ignore 111
    local seen, libs = quench.blocking(function()
      return rawget(_G, "leaked_global"), type(string.format) .. type(io.open) .. type(os.time)
    end)
    assert.is_nil(seen)
    assert.are.equal("functionfunctionfunction", libs)
  end))

  it("raises the worker's error as a string, with its position", T(function()
    local ok, err = pcall(quench.blocking, function(x) error("bad " .. x) end, "input")
    assert.is_false(ok)
    assert.are.equal("string", type(err))
    assert.matches("blocking_spec%.lua:%d+: bad input", err)
    ok, err = pcall(quench.blocking, function() error({ code = 1 }) end)
    assert.is_false(ok)
    assert.are.equal("(error object is a table value)", err)
    ok, err = pcall(quench.blocking, function()
      error(setmetatable({}, { __tostring = function() return "custom" end }))
    end)
    assert.are.same({ false, "custom" }, { ok, err })
  end))

  it("carries no upvalue but the quench module, which becomes the worker's", T(function()
    local up = 1
    assert.has_error(function() quench.blocking(function() return up end) end,
      "quench.blocking: bad argument #1 (the function uses the upvalue 'up'; upvalues are "
      .. "not carried to the worker: pass values as arguments, and require modules inside "
      .. "the function)")
    local a, b, c = quench.blocking(function()
      return quench.blocking_cancelled(), require("quench") == quench, quench.spawn
    end)
    assert.are.same({ false, true }, { a, b })
    assert.is_nil(c)          -- the worker's quench has only blocking_cancelled
  end))

  it("refuses a C function, and what is not a function", T(function()
    assert.has_error(function() quench.blocking(print) end,
      "quench.blocking: bad argument #1 (a C function cannot be moved to a worker; "
      .. "pass a Lua function)")
    assert.has_error(function() quench.blocking(42) end)
  end))

  it("names the argument and the place of a value that cannot cross", T(function()
    local function try(...)
      local ok, err = pcall(quench.blocking, function() end, ...)
      assert.is_false(ok)
      return err
    end
    assert.matches("^quench.blocking: argument #2 %(at %.a%.b%[2%]%): cannot copy a function "
      .. "to the worker", try({ a = { b = { 1, print } } }))
    assert.matches("^quench.blocking: argument #3: cannot copy a userdata", try(1, io.stdout))
    assert.matches("^quench.blocking: argument #2: cannot copy a thread",
      try(coroutine.create(print)))
    local cyclic = { name = "c" }
    cyclic.self = { up = cyclic }
    assert.matches("^quench.blocking: argument #2 %(at %.x%.self%.up%): the table contains "
      .. "itself", try({ x = cyclic }))
    assert.matches("^quench.blocking: argument #2 %(at %[1%]%): cannot copy a table with a "
      .. "metatable", try({ setmetatable({}, {}) }))
    assert.matches("^quench.blocking: argument #2 %(at %[<function>%] %(a key%)%): cannot copy "
      .. "a function", try({ [print] = 1 }))
    local shared = { 1 }
    local a, b = quench.blocking(function(t) return t[1][1], t[2][1] end, { shared, shared })
    assert.are.same({ 1, 1 }, { a, b })   -- a table met twice (not a cycle) is copied twice
  end))

  it("refuses a result that cannot cross, naming it", T(function()
    local ok, err = pcall(quench.blocking, function() return 1, { f = print } end)
    assert.is_false(ok)
    assert.matches("^quench.blocking: result #2 %(at %.f%): cannot copy a function back from "
      .. "the worker", err)
  end))

  it("blocking_cancelled() outside a worker is a clear error", T(function()
    assert.has_error(function() quench.blocking_cancelled() end,
      "quench.blocking_cancelled: only inside a function run by quench.blocking")
  end))

  it("is an await: outside a task it is a clear error", function()
    assert.has_error(function() quench.blocking(function() end) end,
      "quench.blocking: not inside quench.run (waiting needs a running task)")
  end)

  it("blocking_op: awaited, selected, and its failures as values", T(function()
    local op = quench.blocking_op(function(x) return x * 2, "two" end, 21)
    assert.matches("^quench.op %(blocking%)$", tostring(op))
    assert.are.same({ true, 42, "two" }, { op:await() })
    local i, ok, v = quench.select(quench.blocking_op(function() return "fast" end),
      quench.sleep_op(10))
    assert.are.same({ 1, true, "fast" }, { i, ok, v })
    ok, v = quench.blocking_op(function() error("op failed", 0) end):await()
    assert.are.same({ false, "op failed" }, { ok, v })
    assert.has_error(function() quench.blocking_op(function() end, print) end)
  end))

  it("abort never waits for the thread; the worker sees blocking_cancelled()", T(function()
    local started, done = tmpname(), tmpname()
    local h = quench.spawn(quench.blocking, cooperative, started, done, 0.3)
    assert.is_true(wait_until(function() return exists(started) end))
    local t0 = quench.now()
    h:abort()
    local took = quench.now() - t0
    assert.is_true(took < 0.1, "abort took " .. took .. " s")
    assert.is_false(exists(done))           -- the worker still runs (its 0.3 s linger)
    assert.is_true(h:done())
    -- the file exists a moment before its content is written: wait for both
    assert.is_true(wait_until(function() return slurp(done) == "cancelled" end))
    assert.is_true(quench.now() - t0 < 10)  -- stopped by the flag, not its deadline
    os.remove(started)
    os.remove(done)
  end))

  it("a timeout or a select loser sets the flag as well", T(function()
    local started, done = tmpname(), tmpname()
    local ok, err = quench.timeout(0.05, quench.blocking, cooperative, started, done)
    assert.is_false(ok)
    assert.is_true(quench.is_timeout(err))
    -- the file exists a moment before its content is written: wait for both
    assert.is_true(wait_until(function() return slurp(done) == "cancelled" end))
    os.remove(started)
    os.remove(done)
    local i = quench.select(quench.blocking_op(cooperative, started, done), quench.sleep_op(0.05))
    assert.are.equal(2, i)
    -- the file exists a moment before its content is written: wait for both
    assert.is_true(wait_until(function() return slurp(done) == "cancelled" end))
    os.remove(started)
    os.remove(done)
  end))

  it("quench.run waits for cancelled work still running, with the flag set", function()
    local started, done = tmpname(), tmpname()
    local t0 = os.time()
    quench.run(function()
      quench.spawn(quench.blocking, cooperative, started, done, 0.2)
      wait_until(function() return exists(started) end)
      -- main returns: the task is aborted, its worker is told and waited for
    end)
    assert.are.equal("cancelled", slurp(done))   -- written before run returned
    assert.is_true(os.time() - t0 < 10)
    os.remove(started)
    os.remove(done)
  end)

  it("work still queued when dropped never runs", T(function()
    local size = tonumber(os.getenv("UV_THREADPOOL_SIZE")) or 4
    local busy, files = {}, {}
    for i = 1, size do              -- occupy every pool thread
      files[i] = { tmpname(), tmpname() }
      busy[i] = quench.spawn(quench.blocking, cooperative, files[i][1], files[i][2])
    end
    for i = 1, size do
      assert.is_true(wait_until(function() return exists(files[i][1]) end))
    end
    local marker = tmpname()
    local queued = quench.spawn(quench.blocking, function(path)
      local f = assert(io.open(path, "w"))
      f:close()
    end, marker)
    quench.yield()                  -- queued behind the busy workers
    queued:abort()
    for i = 1, size do busy[i]:abort() end
    for i = 1, size do
      assert.is_true(wait_until(function() return exists(files[i][2]) end))
      os.remove(files[i][1])
      os.remove(files[i][2])
    end
    quench.sleep(0.05)
    assert.is_false(exists(marker))
  end))

  it("many calls dropped at random points leak nothing (ASan)", T(function()
    local completed, dropped = 0, 0
    for i = 1, 300 do
      local ok = quench.timeout((i % 4) / 2000, quench.blocking, function(n)
        local s = 0
        for k = 1, n do s = s + k end
        return s, { tostring(s) }
      end, (i % 7) * 1000)
      if ok then completed = completed + 1 else dropped = dropped + 1 end
    end
    assert.are.equal(300, completed + dropped)
    assert.is_true(dropped > 0)
  end))

  it("many concurrent calls all complete", T(function()
    local hs = {}
    for i = 1, 50 do
      hs[i] = quench.spawn(quench.blocking, function(x) return x * x end, i)
    end
    for i = 1, 50 do
      assert.are.same({ true, i * i }, { hs[i]:join() })
    end
  end))
end)
