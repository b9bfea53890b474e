-- Regression: a task returning more values than Lua's minimum stack (a deep
-- select returns one more value at each level) or spawned with that many
-- arguments overflowed the runtime's scratch thread (heap corruption, found
-- by the API fuzzer's deep-nesting case). Values now cross one at a time.
local quench = require "quench"
local T = quench.test

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

describe("regression: many values across a task boundary", function()
  it("a task may return 5,000 values, all joined in order", T(function()
    local t = range(5000)
    local h = quench.spawn(function() quench.sleep(0) return table.unpack(t) end)
    local r = table.pack(h:join())
    assert.equal(5001, r.n)
    assert.is_true(r[1])
    for i = 1, 5000 do assert(r[i + 1] == i, "value " .. i) end
  end))

  it("a task may be spawned with 5,000 arguments", T(function()
    local h = quench.spawn(function(...)
      local n, last = select("#", ...), select(-1, ...)
      return n, last
    end, table.unpack(range(5000)))
    assert.same({ true, 5000, 5000 }, { h:join() })
  end))

  it("a select branch and quench.run give back 5,000 values", function()
    local t = range(5000)
    local r = table.pack(quench.run({ clock = "virtual" }, function()
      return quench.select(function() quench.sleep(1) return table.unpack(t) end)
    end))
    assert.equal(5001, r.n)
    assert.equal(1, r[1])
    assert.equal(5000, r[5001])
  end)
end)
