-- quench demo: tasks, abort as drop, <close> handles, defers.
-- Run: lua5.4 examples/demo.lua
-- (after `luarocks --lua-version=5.4 make rocks/quench-scm-1.rockspec`)
local quench = require "quench"

local function worker(name, seconds)
  quench.defer(function() print(name .. ": defer ran") end)
  local _ <close> = quench.guard(function() print(name .. ": <close> ran") end)
  print(name .. ": sleeping " .. seconds .. " s")
  quench.sleep(seconds)
  print(name .. ": woke up")
  return name .. " finished"
end

local result = quench.run(function()
  local fast = quench.spawn(worker, "fast", 0.05)
  local slow
  do
    local handle <close> = quench.spawn(worker, "slow", 3600)   -- aborted when this block ends
    slow = handle
    print("joined:", fast:join())
  end
  print("slow was aborted, its cleanup already ran:", slow:join())
  return "demo done"
end)
print(result)
