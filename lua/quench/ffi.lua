-- module quench.ffi
-- quench.ffi: the part of LuaJIT's `ffi` that OpenResty's websocket
-- driver (resty.websocket.protocol) uses, for Lua 5.4: byte buffers made
-- by `ffi.new(ffi.typeof("char[?]"), n)`, indexed from 0, and
-- `ffi.string(buf, len)`. Nothing else of the FFI exists here (no cdef,
-- no C calls): those raise, naming this module. quench.ngx.install()
-- makes `require "ffi"` give it when no `ffi` module is installed.
-- Guide: docs/openresty.md.
-- Embedded in quench.so (its first line makes luaopen_quench register it
-- in package.preload, compiled on first require), and installed as a file.
local M = {}

local type, error, tostring, setmetatable, getmetatable = type, error, tostring, setmetatable,
  getmetatable
local char, unpack, concat, floor = string.char, table.unpack, table.concat, math.floor

local BUFFER_TYPES = {
  ["char[?]"] = true, ["unsigned char[?]"] = true, ["uint8_t[?]"] = true, ["int8_t[?]"] = true,
}

local CType = { __name = "quench.ffi.ctype" }
CType.__index = CType
CType.__tostring = function(t) return "ctype<" .. t.decl .. ">" end

-- A buffer: its bytes at [0, size), each stored as 0..255 (a char's bits).
local Buffer = { __name = "quench.ffi.buffer" }
Buffer.__index = function(b, i)
  if type(i) == "number" and i >= 0 and i < rawget(b, "n") then return 0 end
  error("quench.ffi: index " .. tostring(i) .. " out of the buffer's range", 2)
end
Buffer.__newindex = function(b, i, v)
  if type(i) ~= "number" or i < 0 or i >= rawget(b, "n") or i ~= floor(i) then
    error("quench.ffi: index " .. tostring(i) .. " out of the buffer's range", 2)
  end
  if type(v) ~= "number" then
    error("quench.ffi: a buffer holds numbers, not " .. type(v), 2)
  end
  rawset(b, i, floor(v) & 0xFF)
end
Buffer.__len = function(b) return rawget(b, "n") end

local function unsupported(what)
  return function()
    error("quench.ffi: " .. what .. " is not supported: only byte buffers "
          .. "(ffi.new(\"char[?]\", n), ffi.string) exist on Lua 5.4", 2)
  end
end

--- typeof(decl): a buffer type ("char[?]", "unsigned char[?]", "uint8_t[?]").
function M.typeof(decl)
  if type(decl) ~= "string" or not BUFFER_TYPES[decl:gsub("%s+", " ")] then
    unsupported("ffi.typeof(" .. tostring(decl) .. ")")()
  end
  return setmetatable({ decl = decl }, CType)
end

--- new(ctype, n): a zero-filled buffer of n bytes.
function M.new(ct, n)
  if type(ct) == "string" then ct = M.typeof(ct) end
  if getmetatable(ct) ~= CType then unsupported("ffi.new of this type")() end
  if math.type(n) == nil or n < 0 then
    error("bad argument #2 to 'new' (a size >= 0 expected, got " .. tostring(n) .. ")", 2)
  end
  return setmetatable({ n = floor(n) }, Buffer)
end

--- string(buf, len): the first len bytes of buf as a string (without len:
-- up to the first zero byte). A string is returned as it is (or its prefix).
function M.string(buf, len)
  if type(buf) == "string" then return len and buf:sub(1, len) or buf end
  if getmetatable(buf) ~= Buffer then
    error("bad argument #1 to 'string' (a quench.ffi buffer expected, got " .. type(buf) .. ")", 2)
  end
  local size = rawget(buf, "n")
  if len == nil then
    len = 0
    while len < size and (rawget(buf, len) or 0) ~= 0 do len = len + 1 end
  elseif len > size or len < 0 then
    error("bad argument #2 to 'string' (length " .. tostring(len) .. " outside the buffer)", 2)
  end
  local parts, chunk = {}, {}
  for start = 0, len - 1, 4096 do
    local last = math.min(start + 4095, len - 1)
    for i = start, last do chunk[i - start + 1] = rawget(buf, i) or 0 end
    parts[#parts + 1] = char(unpack(chunk, 1, last - start + 1))
  end
  return concat(parts)
end

M.cdef = unsupported("ffi.cdef")
M.cast = unsupported("ffi.cast")
M.metatype = unsupported("ffi.metatype")
M.load = unsupported("ffi.load")
M.C = setmetatable({}, { __index = function(_, k) unsupported("ffi.C." .. tostring(k))() end })
M.os, M.arch = "Linux", "x64"

return M
