-- Nesting: each select, timeout or deadline of a function, token:run and
-- scope runs its body as a branch, one level below its caller. Before, each
-- level was a lua_resume inside the one above, and about 200 levels raised
-- Lua's "C stack overflow" (LUAI_MAXCCALLS). Now a branch nested more than
-- 16 resumes deep starts at the scheduler's next turn instead, so any depth
-- up to quench's limit (5000 levels, docs/tasks.md) works, and one level
-- more raises an error naming the limit.
local quench = require "quench"
local T = quench.test

-- Nest `depth` levels of `kind` around a body that waits, then returns
-- "bottom" (or raises). Counts the <close> variables that ran.
local function nest(kind, depth, bottom, closed)
  local _c <close> = setmetatable({}, { __close = function() closed.n = closed.n + 1 end })
  if depth == 0 then return bottom() end
  local function below() return nest(kind, depth - 1, bottom, closed) end
  if kind == "select" then
    local _, v = quench.select(below)
    return v
  elseif kind == "timeout" then
    local ok, v = quench.timeout(1e6, below)
    assert(ok, "timed out")
    return v
  elseif kind == "deadline" then
    local ok, v = quench.deadline(1e6, below)
    assert(ok, "timed out")
    return v
  elseif kind == "token:run" then
    local ok, v = quench.token():run(below)
    assert(ok, "cancelled")
    return v
  elseif kind == "scope" then
    return quench.scope(function() return below() end)
  end
  error("unknown kind " .. kind)
end

local KINDS = { "select", "timeout", "deadline", "token:run", "scope" }

describe("deep nesting (issue 14, defect 7)", function()
  for _, kind in ipairs(KINDS) do
    it("works 1,000 levels deep: " .. kind, T(function()
      local closed = { n = 0 }
      local r = nest(kind, 1000, function() quench.sleep(1) return "bottom" end, closed)
      assert.are.equal("bottom", r)
      assert.are.equal(1001, closed.n)
    end))
  end

  it("works 250 levels deep with nothing to wait for (every level in place or next turn)", T(function()
    for _, kind in ipairs(KINDS) do
      assert.are.equal("bottom", nest(kind, 250, function() return "bottom" end, { n = 0 }), kind)
    end
  end))

  it("reaches the bottom with an error, a cancel and an abort 5,000 levels deep", T(function()
    local closed = { n = 0 }
    local h = quench.spawn(nest, "token:run", 5000, function() quench.sleep(1) error("deep", 0) end, closed)
    assert.are.same({ false, "deep" }, { h:join() })
    assert.are.equal(5001, closed.n)
    for _, stop in ipairs({ "cancel", "abort" }) do
      closed.n = 0
      h = quench.spawn(nest, "select", 5000, function() quench.sleep(100) end, closed)
      quench.sleep(1)
      h[stop](h)
      local ok, err = h:join()
      assert.is_false(ok)
      assert.is_true(quench.is_cancelled(err), stop)
      assert.are.equal(5001, closed.n, stop)
    end
  end))

  it("raises an error naming the limit one level past it", T(function()
    local ok, err = pcall(nest, "timeout", 5000, function()
      return quench.timeout(1, function() return "too deep" end)
    end, { n = 0 })
    assert.is_false(ok)
    assert.matches("quench.timeout: nesting limit reached: 5000 nested select branches", err)
    -- ops nest nothing: a select of ops at the limit is fine
    local ch = quench.channel(1)
    ch:send("x")
    local r = nest("select", 5000, function() return select(2, quench.select(ch:recv_op())) end, { n = 0 })
    assert.are.equal("x", r)
  end))
end)
