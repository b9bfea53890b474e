-- Run by scripts/test.sh with only an installed tree's `luarocks path` set
-- up: `require "quench"` must find the module in that tree (arg[1]).
local tree = assert(arg[1], "usage: lua5.4 scripts/check_install.lua TREE")
local path = package.searchpath("quench", package.cpath)
assert(path and path:sub(1, #tree) == tree,
  "quench found at " .. tostring(path) .. ", not in " .. tree)
local quench = require "quench"
print(string.format('require "quench" -> %s (version %s)', path, quench._VERSION))
-- The LuaLS meta file (generated from docs/api/src) is installed beside the modules.
local meta = package.searchpath("quench.meta.quench", package.path)
assert(meta and meta:sub(1, #tree) == tree,
  "the LuaLS meta file quench/meta/quench.lua is not installed in " .. tree)
local f = assert(io.open(meta))
assert(f:read("l") == "---@meta quench", meta .. " is not a LuaLS meta file")
f:close()
print("LuaLS meta file -> " .. meta)
