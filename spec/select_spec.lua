-- select, select_biased, timeout, deadline, ops (docs/design.md S7, S8, S15).
local quench = require "quench"
local T = quench.test

local function closer(log, name)
  return setmetatable({}, { __close = function() log[#log + 1] = name end })
end

describe("select (S7)", function()
  it("returns the first branch to finish with its results", T(function()
    local i, a, b = quench.select(
      function() quench.sleep(2); return "slow" end,
      function() quench.sleep(1); return "fast", "extra" end)
    assert.are.same({ 2, "fast", "extra" }, { i, a, b })
    assert.are.equal(1, quench.now())
  end))

  it("drops every loser, its cleanup done, before it returns", T(function()
    local log = {}
    quench.select(
      function() local _ <close> = closer(log, "loser1"); quench.sleep(5) end,
      function() quench.sleep(1); log[#log + 1] = "winner" end,
      function() local _ <close> = closer(log, "loser2"); quench.sleep(5) end)
    assert.are.same({ "winner", "loser1", "loser2" }, log)
    quench.sleep(10)                        -- nothing of the losers is left to run
    assert.are.equal(3, #log)
  end))

  it("runs branches as child coroutines of the caller, not as tasks", T(function()
    local me = quench.current()
    local _, inside = quench.select(function() return quench.current() end)
    assert.are.equal(me, inside)
  end))

  it("completes a ready branch without suspending", T(function()
    local other_ran = false
    local other = quench.spawn(function() other_ran = true end)
    local i, v = quench.select(function() return "ready" end, quench.sleep_op(1))
    assert.are.same({ 1, "ready" }, { i, v })
    assert.is_false(other_ran)               -- we never gave up the CPU
    other:join()
  end))

  it("is fair by default: either of two ready branches can win", T(function()
    local wins = { 0, 0 }
    for _ = 1, 200 do
      local i = quench.select(function() return 1 end, function() return 2 end)
      wins[i] = wins[i] + 1
    end
    assert.is_true(wins[1] > 20 and wins[2] > 20, wins[1] .. "/" .. wins[2])
  end))

  it("select_biased polls in argument order: the first ready branch always wins", T(function()
    for _ = 1, 200 do
      assert.are.equal(1, (quench.select_biased(function() return 1 end, function() return 2 end)))
    end
  end))

  it("a biased select starves a later branch that is always ready; a fair one does not", T(function()
    local function race(sel)
      local second = 0
      for _ = 1, 100 do
        if sel(quench.sleep_op(0), function() return "other" end) == 2 then second = second + 1 end
      end
      return second
    end
    assert.are.equal(0, race(quench.select_biased))
    assert.is_true(race(quench.select) > 10)
  end))

  it("re-raises a branch's error after dropping the others", T(function()
    local log = {}
    local ok, err = pcall(quench.select,
      function() local _ <close> = closer(log, "other"); quench.sleep(5) end,
      function() quench.sleep(1); error("branch failed", 0) end)
    assert.is_false(ok)
    assert.are.equal("branch failed", err)
    assert.are.same({ "other" }, log)
  end))

  it("raises the error of a loser's drop-time cleanup", T(function()
    local ok, err = pcall(quench.select,
      function()
        local _ <close> = setmetatable({}, { __close = function() error("cleanup broke", 0) end })
        quench.sleep(5)
      end,
      function() quench.sleep(1) end)
    assert.is_false(ok)
    assert.are.equal("cleanup broke", err)
  end))

  it("nested: dropping the outer select drops the inner one's branches", T(function()
    local log = {}
    local i = quench.select(
      function()
        return quench.select(
          function() local _ <close> = closer(log, "inner1"); quench.sleep(10) end,
          function() local _ <close> = closer(log, "inner2"); quench.sleep(20) end)
      end,
      function() quench.sleep(1) end)
    assert.are.equal(2, i)
    table.sort(log)
    assert.are.same({ "inner1", "inner2" }, log)
  end))

  it("inside an aborted task: every branch below is dropped", T(function()
    local log = {}
    local h = quench.spawn(function()
      quench.select(
        function() local _ <close> = closer(log, "a"); quench.sleep(10) end,
        function()
          quench.select(function() local _ <close> = closer(log, "deep"); quench.sleep(10) end)
        end)
    end)
    quench.sleep(1)
    h:abort()
    table.sort(log)
    assert.are.same({ "a", "deep" }, log)
  end))

  it("inside a cancelled task: the select is dropped and Cancelled raised at it", T(function()
    local log, caught = {}, nil
    local h = quench.spawn(function()
      local ok, err = pcall(quench.select,
        function() local _ <close> = closer(log, "branch"); quench.sleep(10) end)
      caught = not ok and err
    end)
    quench.sleep(1)
    h:cancel("stop")
    h:join()
    assert.are.same({ "branch" }, log)
    assert.is_true(quench.is_cancelled(caught))
  end))

  it("with one branch runs it", T(function()
    assert.are.same({ 1, "only" }, { quench.select(function() return "only" end) })
  end))

  it("with zero branches, or a wrong one, is a clear error", T(function()
    assert.has_error(function() quench.select() end, "quench.select: needs at least one branch")
    assert.has_error(function() quench.select_biased(42) end,
      "bad argument #1 to 'select_biased' (function or quench.op expected, got number)")
  end))
end)

describe("ops", function()
  it("are not started until awaited: sleep_op counts from the await", T(function()
    local op = quench.sleep_op(2)
    quench.sleep(5)
    local t0 = quench.now()
    op:await()
    assert.are.equal(2, quench.now() - t0)
  end))

  it("are single-use", T(function()
    local op = quench.sleep_op(0)
    op:await()
    assert.has_error(function() op:await() end,
      "quench.op:await: this sleep op was already used (ops are single-use)")
    assert.has_error(function() quench.select(op) end,
      "quench.select: this sleep op was already used (ops are single-use)")
  end))

  it("join_op gives join's results and, dropped, leaves its task alone", T(function()
    local h = quench.spawn(function() quench.sleep(3); return "joined" end)
    local ok = quench.timeout(1, h:join_op())
    assert.is_false(ok)
    assert.is_false(h:done())
    assert.are.same({ 1, true, "joined" }, { quench.select(h:join_op()) })
  end))

  it("print their kind", function()
    assert.are.equal("quench.op (sleep)", tostring(quench.sleep_op(1)))
  end)
end)

describe("timeout (S8)", function()
  it("returns true and the branch's results in time", T(function()
    assert.are.same({ true, "v", 2 }, { quench.timeout(5, function(a, b)
      quench.sleep(1); return a, b end, "v", 2) })
  end))

  it("returns false and a timeout value when the deadline passes, dropping the branch", T(function()
    local log = {}
    local ok, err = quench.timeout(1, function()
      local _ <close> = closer(log, "dropped")
      quench.sleep(5)
    end)
    assert.is_false(ok)
    assert.is_true(quench.is_timeout(err))
    assert.are.same({ "dropped" }, log)
    assert.are.equal(1, quench.now())
  end))

  it("accepts an op", T(function()
    assert.are.same({ true }, { quench.timeout(2, quench.sleep_op(1)) })
    assert.is_false((quench.timeout(1, quench.sleep_op(2))))
  end))

  it("nested: the earliest deadline wins, inner or outer", T(function()
    local ok, inner_ok = quench.timeout(5, function()
      return quench.timeout(1, quench.sleep, 3)
    end)
    assert.is_true(ok)
    assert.is_false(inner_ok)
    assert.are.equal(1, quench.now())
    local log = {}
    local outer_ok, err = quench.timeout(1, function()
      return quench.timeout(5, function()
        local _ <close> = closer(log, "inner branch")
        quench.sleep(3)
      end)
    end)
    assert.is_false(outer_ok)
    assert.is_true(quench.is_timeout(err))
    assert.are.same({ "inner branch" }, log)
    assert.are.equal(2, quench.now())
  end))

  it("the branch wins when it and the deadline are ready together", T(function()
    assert.are.same({ true, "made it" }, { quench.timeout(1, function()
      quench.sleep(1); return "made it" end) })
  end))

  it("with a zero or negative duration still runs a ready branch", T(function()
    assert.are.same({ true, 1 }, { quench.timeout(0, function() return 1 end) })
    assert.is_false((quench.timeout(-1, quench.sleep, 1)))
  end))

  it("deadline takes a time on the quench.now() scale", T(function()
    quench.sleep(10)
    local ok = quench.deadline(12, quench.sleep, 5)
    assert.is_false(ok)
    assert.are.equal(12, quench.now())
  end))

  it("rejects bad arguments clearly", T(function()
    assert.has_error(function() quench.timeout("soon", print) end,
      "bad argument #1 to 'timeout' (number expected, got string)")
    assert.has_error(function() quench.timeout(0 / 0, print) end,
      "bad argument #1 to 'timeout' (number expected, got NaN)")
    assert.has_error(function() quench.timeout(1, 5) end,
      "bad argument #2 to 'timeout' (function or quench.op expected, got number)")
    assert.has_error(function() quench.timeout(1, quench.sleep_op(1), "x") end,
      "quench.timeout: an op takes no arguments")
  end))
end)

describe("virtual clock determinism (S15)", function()
  local function trace(seed)
    local out = {}
    quench.run({ clock = "virtual", seed = seed }, function()
      for _ = 1, 64 do
        out[#out + 1] = quench.select(function() return 1 end, function() return 2 end,
          function() return 3 end)
      end
    end)
    return table.concat(out)
  end

  it("the same seed gives the same schedule; another seed another one", function()
    assert.are.equal(trace(7), trace(7))
    assert.are_not.equal(trace(7), trace(8))
  end)
end)
