-- module quench.bit
-- quench.bit: LuaBitOp's `bit` module (LuaJIT's, which OpenResty drivers
-- require) on Lua 5.4's integer operators: every result is a signed 32-bit
-- integer, as LuaBitOp's; arguments are numbers taken modulo 2^32.
-- quench.ngx.install() makes `require "bit"` give it when no `bit` module
-- is installed. Guide: docs/openresty.md.
-- Embedded in quench.so (its first line makes luaopen_quench register it
-- in package.preload, compiled on first require), and installed as a file.
local M = {}

local type, error, floor, fmt = type, error, math.floor, string.format

-- A number as the 32 bits LuaBitOp sees (its argument modulo 2^32).
local function u32(fname, i, x)
  if type(x) ~= "number" then
    error(fmt("bad argument #%d to '%s' (number expected, got %s)", i, fname, type(x)), 3)
  end
  if x ~= x or x == math.huge or x == -math.huge then return 0 end
  return math.tointeger(x) and x & 0xFFFFFFFF or floor(x + 0.5) & 0xFFFFFFFF
end

-- 32 bits as a signed integer.
local function s32(x)
  x = x & 0xFFFFFFFF
  if x >= 0x80000000 then return x - 0x100000000 end
  return x
end

function M.tobit(x) return s32(u32("tobit", 1, x)) end
function M.bnot(x) return s32(~u32("bnot", 1, x)) end

local function fold(name, op)
  return function(x, ...)
    local r = u32(name, 1, x)
    for i = 1, select("#", ...) do r = op(r, u32(name, i + 1, (select(i, ...)))) end
    return s32(r)
  end
end
M.band = fold("band", function(a, b) return a & b end)
M.bor = fold("bor", function(a, b) return a | b end)
M.bxor = fold("bxor", function(a, b) return a ~ b end)

function M.lshift(x, n) return s32(u32("lshift", 1, x) << (u32("lshift", 2, n) & 31)) end
function M.rshift(x, n) return s32(u32("rshift", 1, x) >> (u32("rshift", 2, n) & 31)) end
function M.arshift(x, n)
  local v, k = s32(u32("arshift", 1, x)), u32("arshift", 2, n) & 31
  return s32(v >> k | (v < 0 and k > 0 and ~(0xFFFFFFFF >> k) or 0))
end
function M.rol(x, n)
  local v, k = u32("rol", 1, x), u32("rol", 2, n) & 31
  return s32(v << k | v >> (32 - k))
end
function M.ror(x, n)
  local v, k = u32("ror", 1, x), u32("ror", 2, n) & 31
  return s32(v >> k | v << (32 - k))
end
function M.bswap(x)
  local v = u32("bswap", 1, x)
  return s32((v & 0xFF) << 24 | (v & 0xFF00) << 8 | (v >> 8) & 0xFF00 | v >> 24)
end

-- tohex(x [, n]): n hex digits (default 8; negative: upper case).
function M.tohex(x, n)
  local v = u32("tohex", 1, x)
  n = n == nil and 8 or floor(n)
  local upper = n < 0
  if upper then n = -n end
  if n > 8 then n = 8 end
  if n < 8 then v = v & ((1 << (4 * n)) - 1) end
  return fmt(upper and "%0" .. n .. "X" or "%0" .. n .. "x", v)
end

return M
