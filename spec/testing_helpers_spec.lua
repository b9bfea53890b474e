-- quench.test (lua/quench/testing.lua): the busted body it makes runs fn in a
-- fresh runtime (virtual clock, seed 1) and fails, naming them, on tasks left
-- alive when fn returns and on task errors nobody observed.
local quench = require "quench"

-- Run a body made by quench.test; return its error message ("" if it passed).
local function failure_of(body)
  local ok, err = pcall(body)
  if ok then return "" end
  return tostring(err)
end

describe("quench.test", function()
  it("a clean body passes and returns fn's results", function()
    local body = quench.test(function()
      local h = quench.spawn(function() quench.sleep(10); return "done" end)
      assert.are.same({ true, "done" }, { h:join() })
      local failed = quench.spawn(error, "observed", 0)
      assert.are.same({ false, "observed" }, { failed:join() })   -- joined: observed
      return 1, nil, 3
    end)
    assert.are.same(table.pack(1, nil, 3), table.pack(body()))
  end)

  it("fails when a task is left alive, naming its id, name, state and wait", function()
    local id
    local msg = failure_of(quench.test(function()
      local h = quench.spawn(function() quench.sleep(3600) end)
      h:name("poller")
      id = h:id()
      quench.sleep(1)
    end))
    assert.matches("quench.test: 1 task still alive when the test function returned", msg, 1, true)
    assert.matches('task #' .. id .. ' "poller" (suspended, waiting: sleep until 3600.0)', msg, 1, true)
  end)

  it("names a task that never started as pending, and counts every one", function()
    local msg = failure_of(quench.test(function()
      quench.spawn(function() end)
      quench.spawn(function() end)
    end))
    assert.matches("2 tasks still alive", msg, 1, true)
    assert.matches("(pending)", msg, 1, true)
  end)

  it("the tasks left alive are still torn down by quench.run: their cleanup runs", function()
    local cleaned = false
    failure_of(quench.test(function()
      quench.spawn(function()
        local _ <close> = quench.guard(function() cleaned = true end)
        quench.sleep(3600)
      end)
      quench.yield()
    end))
    assert.is_true(cleaned)
  end)

  it("opts.allow_alive = true lets tasks outlive fn (quench.run's teardown aborts them)", function()
    local body = quench.test(function()
      quench.spawn(quench.sleep, 3600)
      quench.yield()
      return "ok"
    end, { allow_alive = true })
    assert.are.equal("ok", body())
  end)

  it("fails when a task error was never observed, naming the task and the error", function()
    local id
    local msg = failure_of(quench.test(function()
      local h = quench.spawn(function() error("disk on fire") end)
      h:name("writer")
      id = h:id()
      h:detach()                                   -- nobody will join it
      quench.yield()
    end))
    assert.matches("quench.test: 1 task error nobody observed", msg, 1, true)
    assert.matches('task #' .. id .. ' "writer": ', msg, 1, true)
    assert.matches("disk on fire", msg, 1, true)
    assert.matches("stack traceback", msg, 1, true)
  end)

  it("catches an error of a task whose handle is still held but never joined", function()
    local msg = failure_of(quench.test(function()
      local h = quench.spawn(function() error({ code = 7 }) end)
      quench.yield()
      assert.is_true(h:done())
    end))
    assert.matches("1 task error nobody observed", msg, 1, true)
    assert.matches("task #%d+: table: 0x", msg)      -- a table with no __tostring
  end)

  it("names both problems when both happen", function()
    local msg = failure_of(quench.test(function()
      quench.spawn(quench.sleep, 3600)
      quench.spawn(error, "lost", 0):detach()
      quench.yield()
    end))
    assert.matches("1 task still alive", msg, 1, true)
    assert.matches("1 task error nobody observed", msg, 1, true)
  end)

  it("a cancelled task is not an error", function()
    assert.has_no.errors(quench.test(function()
      local h = quench.spawn(quench.sleep, 3600)
      quench.yield()
      h:abort("done with it")
    end))
  end)

  it("a user's on_task_error gets the reports instead, and the body passes", function()
    local seen = {}
    local body = quench.test(function()
      quench.spawn(error, "reported", 0):detach()
      quench.yield()
    end, { on_task_error = function(err) seen[#seen + 1] = err end })
    assert.has_no.errors(body)
    assert.are.same({ "reported" }, seen)
  end)

  it("raises fn's own error unchanged", function()
    local e = { reason = "the assertion" }
    local ok, err = pcall(quench.test(function()
      quench.sleep(1)
      error(e)
    end))
    assert.is_false(ok)
    assert.are.equal(e, err)
  end)

  it("keeps the C behaviour: virtual clock and seed 1 unless opts says otherwise", function()
    local function schedule()
      local picks = {}
      for i = 1, 20 do
        picks[i] = quench.select(function() return 1 end, function() return 2 end)
      end
      return table.concat(picks)
    end
    local in_test, now
    quench.test(function()
      quench.sleep(3600)
      now = quench.now()
      in_test = schedule()
    end)()
    assert.are.equal(3600, now)                   -- virtual: no real hour passed
    assert.are.equal(in_test, quench.run({ clock = "virtual", seed = 1 }, schedule))
    local other = quench.test(schedule, { seed = 2 })()
    assert.is_string(other)
    assert.has_error(quench.test(function() quench.advance(1) end, { clock = "real" }))
  end)

  it("checks its arguments when the body is made", function()
    assert.has_error(function() quench.test() end,
      "bad argument #1 to 'test' (function expected, got nil)")
    assert.has_error(function() quench.test(function() end, 5) end,
      "bad argument #2 to 'test' (table expected, got number)")
  end)
end)

describe("quench.test in busted", function()
  it("is used as an it body", quench.test(function()
    local ch = quench.channel()
    local h = quench.spawn(function() ch:send("hi") end)
    assert.are.equal("hi", ch:recv())
    h:join()
  end))

  it("rejects an unknown option when the body is made, naming it", function()
    assert.has_error(function() quench.test(function() end, { clok = "real" }) end,
      "bad argument #2 to 'test' (unknown option 'clok')")
  end)

  it("a failure it reports points at the test function, not at quench's files", function()
    local here = debug.getinfo(1, "S").short_src
    local fn = function()
      quench.spawn(function() error("lost", 0) end)
      quench.yield()
    end
    local msg = failure_of(quench.test(fn))
    assert.are.equal(here .. ":" .. debug.getinfo(fn, "S").linedefined .. ": quench.test: 1 task "
      .. "error nobody observed", msg:match("^[^(]*"):gsub(" $", ""))
    local line
    msg = failure_of(quench.test(function()
      line = debug.getinfo(1, "l").currentline + 1
      error("no position", 0)
    end))
    assert.are.equal(here .. ":" .. line .. ": no position", msg)
  end)
end)
