-- The small-block allocator quench installs in the Lua state (lua/arena.c):
-- on by default, off under AddressSanitizer and valgrind and with
-- QUENCH_ARENA=0; blocks move between size classes and to and from the
-- interpreter's own allocator intact; a state that closes frees it (the
-- process exits cleanly after lua_close).
local quench = require "quench"

local under_asan = (os.getenv("LD_PRELOAD") or ""):match("libasan") ~= nil
local under_valgrind = os.getenv("QUENCH_UNDER_VALGRIND") == "1"
local expect_on = not under_asan and not under_valgrind and os.getenv("QUENCH_ARENA") ~= "0"

-- Run `code` in a fresh lua5.4 that finds the quench.so under test; returns
-- its output and whether it exited with status 0.
local function child(code, env)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local cmd = string.format("%s LUA_CPATH=%q LUA_PATH=%q lua5.4 %q 2>&1",
    env or "", package.cpath, package.path, path)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  os.remove(path)
  return out, ok
end

describe("the Lua state's small-block allocator", function()
  it("serves the state unless it is turned off (sanitizers, valgrind, QUENCH_ARENA=0)", function()
    if expect_on then
      assert.is_true(quench.stats().arena_bytes > 0)
    else
      assert.are.equal(0, quench.stats().arena_bytes)
    end
    -- a fresh process (not under valgrind, whatever runs this one)
    local code = [[
      local quench = require "quench"
      local before = quench.stats().arena_bytes
      local t = {}
      for i = 1, 20000 do t[i] = { i } end
      io.write(quench.stats().arena_bytes > before and "grew" or quench.stats().arena_bytes)
    ]]
    local out, ok = child(code)
    assert.is_true(ok, out)
    local off = under_asan or os.getenv("QUENCH_ARENA") == "0"
    assert.are.equal(off and "0" or "grew", out)
    out, ok = child(code, "QUENCH_ARENA=0")
    assert.is_true(ok, out)
    assert.are.equal("0", out)
  end)

  it("keeps every block's contents across size classes, reallocations and collections", function()
    -- strings of every small length, tables grown one slot at a time (each
    -- growth a reallocation into the next class, then past the largest
    -- class into the interpreter's allocator), coroutines whose stacks grow
    -- and shrink; everything checked after full collections
    local strs, tabs, cos = {}, {}, {}
    for n = 1, 1100 do strs[n] = string.rep(string.char(65 + n % 26), n) end
    for i = 1, 300 do
      local t = {}
      for j = 1, i do t[j] = j * i end
      tabs[i] = t
    end
    for i = 1, 200 do
      local depth = i % 40
      cos[i] = coroutine.wrap(function()
        local function down(d) if d > 0 then return down(d - 1) + 1 end coroutine.yield(0) return 0 end
        down(depth)
        coroutine.yield(depth)
      end)
      cos[i]()
    end
    for n = 1, 1100, 2 do strs[n] = nil end
    collectgarbage("collect")
    collectgarbage("collect")
    for n = 2, 1100, 2 do
      assert.are.equal(n, #strs[n])
      assert.are.equal(string.rep(string.char(65 + n % 26), n), strs[n])
    end
    for i = 1, 300 do
      local t = tabs[i]
      assert.are.equal(i, #t)
      for j = 1, i do assert.are.equal(j * i, t[j]) end
      for j = i, 1, -1 do t[j] = nil end   -- shrinks at the next collection
    end
    for i = 1, 200 do assert.are.equal(i % 40, cos[i]()) end
    collectgarbage("collect")
    for n = 2, 1100, 2 do assert.are.equal(n, #strs[n]) end
  end)

  it("serves the core's blocks and a state that closes frees it", function()
    local out, ok = child([[
      local quench = require "quench"
      local got = quench.run(function()
        local chans, sum = {}, 0
        for i = 1, 2000 do
          local ch = quench.channel(1)
          chans[i] = ch
          quench.spawn(function() ch:send(i) end)
        end
        for i = 1, 2000 do sum = sum + chans[i]:recv() end
        return sum
      end)
      collectgarbage("collect")
      collectgarbage("collect")
      io.write(got, " ", quench.stats().live_blocks)
    ]])
    assert.is_true(ok, out)
    assert.are.equal(tostring(2000 * 2001 // 2) .. " 0", out)
  end)
end)
