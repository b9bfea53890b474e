-- Cleanup that always runs: quench.defer and quench.guard (docs/design.md S10).
local quench = require "quench"
local T = quench.test

describe("defer (S10)", function()
  local function run_with(outcome)
    local log = {}
    local h = quench.spawn(function()
      quench.defer(function() log[#log + 1] = 1 end)
      quench.defer(function() log[#log + 1] = 2 end)
      quench.defer(function() log[#log + 1] = 3 end)
      if outcome == "error" then error("boom") end
      quench.sleep(10)
      return "ok"
    end)
    quench.sleep(1)
    if outcome == "abort" then h:abort() end
    h:join()
    return log
  end

  it("runs last first when the task returns", T(function()
    assert.are.same({ 3, 2, 1 }, run_with("return"))
  end))

  it("runs last first when the task fails", T(function()
    assert.are.same({ 3, 2, 1 }, run_with("error"))
  end))

  it("runs last first when the task is aborted", T(function()
    assert.are.same({ 3, 2, 1 }, run_with("abort"))
  end))

  it("runs after the task's <close> variables", T(function()
    local log = {}
    quench.spawn(function()
      quench.defer(function() log[#log + 1] = "defer" end)
      local _ <close> = setmetatable({}, { __close = function() log[#log + 1] = "close" end })
    end):join()
    assert.are.same({ "close", "defer" }, log)
  end))

  it("that raises fails the task, and the other defers still run", T(function()
    local log = {}
    local h = quench.spawn(function()
      quench.defer(function() log[#log + 1] = "first" end)
      quench.defer(function() error("defer broke", 0) end)
      quench.defer(function() log[#log + 1] = "last" end)
      return "value"
    end)
    assert.are.same({ false, "defer broke" }, { h:join() })
    assert.are.same({ "last", "first" }, log)
  end))

  it("cannot wait", T(function()
    local msg
    quench.spawn(function()
      quench.defer(function() msg = select(2, pcall(quench.sleep, 1)) end)
    end):join()
    assert.matches("cannot wait in drop%-time cleanup", msg)
  end))

  it("that raises after the task failed keeps the task's own error (the first wins)", T(function()
    local ran = false
    local h = quench.spawn(function()
      quench.defer(function() ran = true; error("defer error", 0) end)
      error("task error", 0)
    end)
    assert.are.same({ false, "task error" }, { h:join() })
    assert.is_true(ran)
  end))

  it("cannot be added while the task runs its cleanup", T(function()
    local msg
    quench.spawn(function()
      quench.defer(function() msg = select(2, pcall(quench.defer, print)) end)
    end):join()
    assert.are.equal("quench.defer: the task is already running its cleanup", msg)
  end))

  it("needs a function and a task", function()
    assert.has_error(function() quench.defer(print) end,
      "quench.defer: not inside quench.run")
    quench.run(function()
      assert.has_error(function() quench.defer(42) end,
        "bad argument #1 to 'defer' (function expected, got number)")
    end)
  end)
end)

describe("guard (S10)", function()
  it("runs its function once at scope exit", function()
    local n = 0
    do
      local g <close> = quench.guard(function() n = n + 1 end)
      getmetatable(g).__close(g)   -- an explicit close first: later closes do nothing
    end
    assert.are.equal(1, n)
  end)

  it("runs when the scope exits by an error, and sees the error", function()
    local seen
    pcall(function()
      local _ <close> = quench.guard(function(err) seen = err end)
      error("E", 0)
    end)
    assert.are.equal("E", seen)
  end)

  it("does not run once dismissed", function()
    local ran = false
    do
      local g <close> = quench.guard(function() ran = true end)
      g:dismiss()
    end
    assert.is_false(ran)
  end)

  it("runs when its task is aborted", T(function()
    local ran = false
    local h = quench.spawn(function()
      local _ <close> = quench.guard(function() ran = true end)
      quench.sleep(100)
    end)
    quench.yield()
    h:abort()
    assert.is_true(ran)
  end))
end)
