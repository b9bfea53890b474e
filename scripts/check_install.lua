-- Run by scripts/test.sh with only an installed tree's `luarocks path` set
-- up: `require "quench"` must find the module in that tree (arg[1]).
local tree = assert(arg[1], "usage: lua5.4 scripts/check_install.lua TREE")
local path = package.searchpath("quench", package.cpath)
assert(path and path:sub(1, #tree) == tree,
  "quench found at " .. tostring(path) .. ", not in " .. tree)
local quench = require "quench"
print(string.format('require "quench" -> %s (version %s)', path, quench._VERSION))
