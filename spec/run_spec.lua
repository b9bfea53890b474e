-- quench.run: results, errors, teardown, reports (docs/design.md S12, S13, S15).
local quench = require "quench"
local T = quench.test

local function lua_child(code)
  -- Runs `code` in a fresh lua5.4 with the same module path; returns stdout+stderr and status.
  local cmd = string.format("LUA_CPATH=%q LUA_PATH=%q lua5.4 -e %q 2>&1",
    package.cpath, package.path, code)
  local p = io.popen(cmd)
  local out = p:read("a")
  local _, _, status = p:close()
  return out, status
end

describe("quench.run (S12)", function()
  it("returns the main function's results", function()
    assert.are.same(table.pack(1, nil, "x"), table.pack(quench.run(function(a, b)
      return a, b, "x"
    end, 1, nil)))
  end)

  it("re-raises the main function's error object", function()
    local e = setmetatable({}, { __tostring = function() return "E" end })
    local ok, err = pcall(quench.run, function() quench.sleep(0); error(e) end)
    assert.is_false(ok)
    assert.are.equal(e, err)
  end)

  it("aborts every task still alive when main returns, cleanups included", function()
    local log = {}
    local h
    quench.run({ clock = "virtual" }, function()
      h = quench.spawn(function()
        local _ <close> = setmetatable({}, { __close = function() log[#log + 1] = "closed" end })
        quench.sleep(3600)
      end)
      quench.sleep(1)
      h:detach()
      quench.spawn(function() log[#log + 1] = "never ran" end)   -- still pending at the end
    end)
    assert.are.same({ "closed" }, log)
    assert.is_true(h:done())
    assert.has_error(function() h:join() end,
      "quench.task:join: not inside quench.run (waiting needs a running task)")
  end)

  it("raises a clear error on deadlock instead of hanging", function()
    local cleaned = false
    local ok, err = pcall(quench.run, function()
      local _ <close> = quench.guard(function() cleaned = true end)
      local me = quench.current()
      quench.spawn(function() me:join() end):join()
    end)
    assert.is_false(ok)
    assert.matches("deadlock", err)
    assert.is_true(cleaned)
  end)

  it("does not nest", T(function()
    assert.has_error(function() quench.run(function() end) end,
      "quench.run: a runtime is already running here (runtimes do not nest)")
  end))

  it("rejects bad options", function()
    assert.has_error(function() quench.run({ clock = "sundial" }, print) end,
      "bad argument #1 to 'run' (opts.clock must be \"real\", \"virtual\" or \"manual\")")
    assert.has_error(function() quench.run({ seed = 1.5 }, print) end,
      "bad argument #1 to 'run' (opts.seed must be an integer)")
    assert.has_error(function() quench.run({}, 42) end,
      "bad argument #2 to 'run' (function expected, got number)")
    assert.has_error(function() quench.run() end,
      "bad argument #1 to 'run' (function expected, got no value)")
  end)

  it("rejects an unknown option, naming it", function()
    local ran = false
    assert.has_error(function() quench.run({ clok = "virtual" }, function() ran = true end) end,
      "bad argument #1 to 'run' (unknown option 'clok')")
    assert.has_error(function() quench.run({ [1] = "virtual" }, print) end,
      "bad argument #1 to 'run' (unknown option '1')")
    assert.is_false(ran)
  end)

  it("rejects a negative or NaN duration for advance and stop", T(function()
    assert.has_error(function() quench.advance(-5) end,
      "bad argument #1 to 'advance' (seconds must be >= 0, got -5)")
    assert.has_error(function() quench.advance(0 / 0) end)
    assert.has_error(function() quench.advance("soon") end)
    assert.are.equal(0, quench.now())
    local h = quench.spawn(quench.sleep, 10)
    assert.has_error(function() h:stop(-1) end,
      "bad argument #1 to 'stop' (seconds must be >= 0, got -1)")
    assert.has_error(function() h:stop(0 / 0) end)
    assert.are.equal("pending", h:state())              -- not cancelled by the refused call
    h:abort()
  end))

  it("waiting outside a task is a clear error", function()
    assert.has_error(function() quench.sleep(1) end,
      "quench.sleep: not inside quench.run (waiting needs a running task)")
    assert.has_error(function() quench.yield() end,
      "quench.yield: not inside quench.run (waiting needs a running task)")
    assert.has_error(function() quench.spawn(print) end, "quench.spawn: not inside quench.run")
  end)

  it("creates and tears down 1000 runtimes without growing", function()
    local function round()
      quench.run({ clock = "virtual" }, function()
        local hs = {}
        for i = 1, 10 do
          hs[i] = quench.spawn(function() quench.sleep(i) return i end)
        end
        quench.spawn(function() quench.sleep(1e6) end)
        for i = 1, 10 do hs[i]:join() end
      end)
    end
    for _ = 1, 100 do round() end
    collectgarbage("collect"); collectgarbage("collect")
    local before = collectgarbage("count")
    for _ = 1, 1000 do round() end
    collectgarbage("collect"); collectgarbage("collect")
    assert.is_true(collectgarbage("count") < before + 64, "Lua heap grew by "
      .. (collectgarbage("count") - before) .. " KB")
  end)
end)

describe("unobserved task errors (S13)", function()
  it("are reported on stderr with their traceback", function()
    local out = lua_child([[
      local quench = require "quench"
      quench.run(function()
        quench.spawn(function()
          local function deep() error("lost error") end
          deep()
        end)
        quench.sleep(0.001)
      end)
      print("run returned")
    ]])
    assert.matches("quench: task %d+ failed and nobody joined it: .*lost error", out)
    assert.matches("stack traceback:.*in %a+ 'deep'", out)
    assert.matches("run returned", out)
  end)

  it("of a detached task are reported as soon as it fails", function()
    local reports = {}
    quench.run({ clock = "virtual", on_task_error = function(err, tb, h)
      reports[#reports + 1] = { err = err, tb = tb, h = h }
    end }, function()
      local h = quench.spawn(function() quench.sleep(1); error("bad", 0) end)
      h:detach()
      quench.sleep(2)
      assert.are.equal(1, #reports)
      assert.are.equal("bad", reports[1].err)
      assert.matches("stack traceback", reports[1].tb)
      assert.are.equal(h, reports[1].h)
    end)
  end)

  it("are not reported once joined", function()
    local reports = 0
    quench.run({ clock = "virtual", on_task_error = function() reports = reports + 1 end }, function()
      local h = quench.spawn(function() error("seen") end)
      assert.is_false((h:join()))
    end)
    assert.are.equal(0, reports)
  end)

  it("are reported at the end of the run when never joined", function()
    local reports = {}
    quench.run({ clock = "virtual", on_task_error = function(err) reports[#reports + 1] = err end },
      function()
        quench.spawn(function() error("never joined", 0) end)
        quench.sleep(1)
        assert.are.same({}, reports)
      end)
    assert.are.same({ "never joined" }, reports)
  end)

  it("are reported when the handle is collected, if that comes first", function()
    local reports = {}
    quench.run({ clock = "virtual", on_task_error = function(err) reports[#reports + 1] = err end },
      function()
        quench.spawn(function() error("collected", 0) end)   -- the handle is dropped at once
        quench.sleep(1)
        collectgarbage()
        collectgarbage()                          -- a finalizer runs in the cycle after
        assert.are.same({ "collected" }, reports)
      end)
    assert.are.same({ "collected" }, reports)
  end)
end)

describe("clocks (S15)", function()
  it("virtual: time jumps to the next timer", function()
    local t = quench.run({ clock = "virtual" }, function()
      quench.sleep(3600)
      return quench.now()
    end)
    assert.are.equal(3600, t)
  end)

  it("manual: time moves only with quench.advance", function()
    quench.run({ clock = "manual" }, function()
      local woke = false
      quench.spawn(function() quench.sleep(5); woke = true end)
      quench.yield()
      quench.advance(4.999)
      quench.yield()
      assert.is_false(woke)
      quench.advance(0.001)
      quench.yield()
      quench.yield()
      assert.is_true(woke)
      assert.are.equal(5, quench.now())
    end)
  end)

  it("manual: a run that only waits for time is an error, not a hang", function()
    assert.has_error(function()
      quench.run({ clock = "manual" }, function() quench.sleep(1) end)
    end, "quench.run: the manual clock stalled: every task waits for a timer and nobody calls quench.advance")
  end)

  it("real: advance is refused", function()
    quench.run(function()
      assert.has_error(function() quench.advance(1) end,
        "quench.advance: the runtime's clock is real (run with {clock = \"manual\"} or \"virtual\")")
    end)
  end)

  it("real: a sleep never wakes early", function()
    quench.run(function()
      local t0 = quench.now()
      quench.sleep(0.02)
      assert.is_true(quench.now() - t0 >= 0.02)
    end)
  end)
end)
