-- W7 part by part: the Lua heap of each piece of an idle task blocked on
-- its own channel's recv, measured as collectgarbage("count") deltas over
-- N objects (docs/performance.md, "W7, part by part").
--
--   LUA_CPATH='build/?.so;;' lua5.4 bench/w7_parts.lua [N]
--
-- The recv future is core memory (malloc), outside the Lua heap: W7's RSS
-- figures count it, this script does not.

local quench = require "quench"

local N = math.tointeger(tonumber(arg[1] or "")) or 100000

local function heap()
  collectgarbage("collect")
  collectgarbage("collect")
  return collectgarbage("count") * 1024
end

local function filled(n)       -- an array already grown to n slots
  local t = {}
  for i = 1, n do t[i] = false end
  return t
end

local function line(what, bytes)
  print(string.format("%-52s %8.1f B", what, bytes))
end

-- Lua's own floor: a coroutine suspended in a C function (coroutine.yield)
-- called from one Lua function, plus that function's closure (32 B).
do
  local keep = filled(N)
  local h0 = heap()
  for i = 1, N do
    local co = coroutine.create(function() coroutine.yield() end)
    coroutine.resume(co)
    keep[i] = co
  end
  line("coroutine yielding from a C function (+ closure)", (heap() - h0) / N)
end
heap()

quench.run(function()
  local chans, handles = filled(N), filled(N)
  local h0 = heap()
  for i = 1, N do chans[i] = quench.channel(1) end
  local h1 = heap()
  line("channel (userdata)", (h1 - h0) / N)
  local started = 0
  local function body(ch)
    started = started + 1
    ch:recv()
  end
  for i = 1, N do handles[i] = quench.spawn(body, chans[i]) end
  local h2 = heap()
  line("task handle (1 argument) + its alive-table slot", (h2 - h1) / N)
  while started < N do quench.yield() end
  quench.yield()
  local h3 = heap()
  line("the task's thread once blocked in recv", (h3 - h2) / N)
  line("W7's Lua heap per task (channel excluded)", (h3 - h1) / N)
  for i = 1, N do chans[i]:close() end
end)
