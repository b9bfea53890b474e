--- `quench.bit` and `quench.ffi`: the LuaJIT modules OpenResty drivers
-- require, for Lua 5.4. `quench.ngx.install()` makes `require "bit"` and
-- `require "ffi"` give them when no such module is installed.
--
-- `quench.bit` is LuaBitOp's API: every result a signed 32-bit integer,
-- arguments taken modulo 2^32, shift counts modulo 32. `quench.ffi` has
-- only byte buffers (what `resty.websocket.protocol` uses): no `cdef`, no
-- C calls (they raise, naming the module).
--
-- Guide: [docs/openresty.md](../../openresty.md).
-- @module quench.bit

--- The number as a signed 32-bit integer.
--
-- **Cancel safety.** Never waits.
--
-- @tparam number x the number
-- @treturn integer
-- @raise not a number
function bit.tobit(x) end

--- Bitwise not.
--
-- **Cancel safety.** Never waits.
--
-- @tparam number x the number
-- @treturn integer
-- @raise not a number
function bit.bnot(x) end

--- Bitwise and of all the arguments.
--
-- **Cancel safety.** Never waits.
--
-- @tparam number x the first number
-- @param ... more numbers
-- @treturn integer
-- @raise an argument not a number
function bit.band(x, ...) end

--- Bitwise or of all the arguments.
--
-- **Cancel safety.** Never waits.
--
-- @tparam number x the first number
-- @param ... more numbers
-- @treturn integer
-- @raise an argument not a number
function bit.bor(x, ...) end

--- Bitwise exclusive or of all the arguments.
--
-- **Cancel safety.** Never waits.
--
-- @tparam number x the first number
-- @param ... more numbers
-- @treturn integer
-- @raise an argument not a number
function bit.bxor(x, ...) end

--- Logical shift left by `n` (mod 32).
--
-- **Cancel safety.** Never waits.
--
-- @tparam number x the number
-- @tparam number n the count
-- @treturn integer
-- @raise an argument not a number
function bit.lshift(x, n) end

--- Logical shift right by `n` (mod 32).
--
-- **Cancel safety.** Never waits.
--
-- @tparam number x the number
-- @tparam number n the count
-- @treturn integer
-- @raise an argument not a number
function bit.rshift(x, n) end

--- Arithmetic shift right by `n` (mod 32): the sign bit is copied in.
--
-- **Cancel safety.** Never waits.
--
-- @tparam number x the number
-- @tparam number n the count
-- @treturn integer
-- @raise an argument not a number
function bit.arshift(x, n) end

--- Rotate left by `n` (mod 32).
--
-- **Cancel safety.** Never waits.
--
-- @tparam number x the number
-- @tparam number n the count
-- @treturn integer
-- @raise an argument not a number
function bit.rol(x, n) end

--- Rotate right by `n` (mod 32).
--
-- **Cancel safety.** Never waits.
--
-- @tparam number x the number
-- @tparam number n the count
-- @treturn integer
-- @raise an argument not a number
function bit.ror(x, n) end

--- Swap the four bytes.
--
-- **Cancel safety.** Never waits.
--
-- @tparam number x the number
-- @treturn integer
-- @raise not a number
function bit.bswap(x) end

--- `n` hex digits of `x` (default 8; a negative `n`: upper case).
--
-- **Cancel safety.** Never waits.
--
-- @tparam number x the number
-- @tparam[opt=8] integer n the digits
-- @treturn string
-- @raise not a number
function bit.tohex(x, n) end

--- `quench.ffi`: a buffer type. Only `"char[?]"`, `"unsigned char[?]"`,
-- `"uint8_t[?]"`, `"int8_t[?]"`.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string decl the C declaration
-- @treturn table the type
-- @raise any other declaration (`quench.ffi: ... is not supported`)
function ffi.typeof(decl) end

--- `quench.ffi`: a zero-filled byte buffer of `n` bytes, indexed from 0;
-- a stored number keeps its low 8 bits, as a C char.
--
-- **Cancel safety.** Never waits.
--
-- @tparam table|string ctype from `typeof`, or its declaration
-- @tparam integer n the size
-- @treturn table the buffer
-- @raise another type; a bad size
function ffi.new(ctype, n) end

--- `quench.ffi`: the first `len` bytes of a buffer as a string (without
-- `len`: up to the first zero byte).
--
-- **Cancel safety.** Never waits.
--
-- @tparam table buf the buffer (a string is returned as it is)
-- @tparam[opt] integer len the length
-- @treturn string
-- @raise not a buffer; `len` beyond the buffer
function ffi.string(buf, len) end
