-- module quench.ngx
-- quench.ngx: OpenResty's cosocket API, and the parts of `ngx` that pure-Lua
-- OpenResty drivers use, on quench tasks. Guide: docs/openresty.md.
--
--   local ngxq = require "quench.ngx"
--   ngxq.install()                      -- globals ngx, unpack; resty.* loader
--   local redis = require "resty.redis" -- Debian's lua-nginx-redis, unmodified
--
-- A socket is a table over a quench stream (`self.s`, nil when not
-- connected). Every call that waits is a quench wait bounded by the
-- socket's timeout: it can be aborted, raced and bounded by
-- quench.timeout. `busy` (slot 2) is the task in a wait on the socket, set
-- before the wait and cleared after it; a wait that was dropped (its task
-- aborted, a select or quench.timeout around it) leaves it set, and that
-- is how the socket knows its connection is in a dubious state: the next
-- call closes it, `setkeepalive` refuses it. `self.dirty` is set by a
-- timeout (the request may still be answered later): the socket can go on
-- reading, but never goes back to the pool.
-- Embedded in quench.so (its first line makes luaopen_quench register it
-- in package.preload, compiled on first require), and installed as a file.
local quench = require "quench"
local pool = require "quench.pool"
local C = quench._ngx

local type, tostring, tonumber, select, error, pcall = type, tostring, tonumber, select, error, pcall
local setmetatable, math_type, floor = setmetatable, math.type, math.floor
local concat, byte, char, sub, find, fmt = table.concat, string.byte, string.char, string.sub,
  string.find, string.format
local timeout, current, tcp_connect_op = quench.timeout, quench.current, quench.tcp.connect_op

local M = {}
local ngx = {}
M.ngx = ngx

local DEFAULT_TIMEOUT = 60   -- seconds: OpenResty's lua_socket_*_timeout

-- I/O failures come back from quench as "ENAME: message": OpenResty says
-- the message alone ("connection refused", "connection reset by peer").
local function errmsg(msg)
  if type(msg) ~= "string" then return tostring(msg) end
  local m = msg:match("^E[%u%d_]+: (.*)$")
  return m or msg
end

local function check_ms(fname, i, v, optional)
  if v == nil and optional then return nil end
  local n = tonumber(v)
  if n == nil or n < 0 or n ~= n then
    error(fmt("bad argument #%d to '%s' (timeout in milliseconds >= 0 expected, got %s)",
              i, fname, v == nil and "no value" or tostring(v)), 3)
  end
  return n
end

-------------------------------------------------------------------------------
-- TCP cosocket
-------------------------------------------------------------------------------

local Tcp = {}
Tcp.__index = Tcp
-- `busy` (above) is kept in the socket's array slot 2, beside the fast
-- paths' slot 1: the C wait sets and clears it with lua_rawseti, cheaper
-- than a hashed field (about 120 instructions a reply)
local BUSY <const> = 2
-- and, in slot 3, `read_timeout` (in seconds) converted to nanoseconds by
-- the C wait and kept there for the next (false: not converted yet; set
-- so wherever read_timeout changes): a lua_rawgeti and lua_tointegerx a
-- wait instead of a hashed field and a float conversion
local READ_NS <const> = 3
Tcp.__name = "quench.ngx.tcp"

-- A line (n nil) or n bytes, waiting at most `seconds` with a read that
-- carries its own deadline (lua/ngx.c): data; false at the deadline; nil,
-- msg, partial on EOF or an error.
local c_receive = C.receive

-- Close the connection, forget it; the socket object can connect again.
local function drop(self)
  local s = self.s
  self.s, self[BUSY], self.dirty, self.pending, self.tls = nil, nil, false, nil, nil
  self[1] = false
  self.waiting = false
  if s then pcall(s.close, s) end
  local st = self.limit
  if st then
    self.limit = nil
    st.inuse = st.inuse - 1
    if st.waiting > 0 then st.notify:notify_one() end
  end
end

-- A socket is its own guard: held in a to-be-closed variable around each
-- wait (`wait` below), which sets `waiting` to true before the wait and to
-- "done" after it. A __close that finds `waiting` still true is closing
-- over a wait that was dropped (its task aborted, a select or timeout
-- around it finished) or that raised: the request was cut short, and the
-- connection is closed at once, before anyone can read its stale answer
-- or the server acts on it further. Only calls that really wait pay for
-- the guard: a read the buffer satisfies, or a write below the write
-- limit, does not. Outside any wait (`waiting` false), __close is the
-- user's: `local sock <close> = ngx.socket.tcp()` closes it at scope exit.
Tcp.__close = function(sock)
  if sock.waiting == "done" then
    sock.waiting = false
  else
    drop(sock)
  end
end

-- Wait for `op` at most `seconds`: true, results; or false, Timeout.
-- With `fn_arg1`, `op` is a function called with (fn_arg1, fn_arg2).
local function wait(self, seconds, op, fn_arg1, fn_arg2)
  self.waiting = true
  local _guard <close> = self
  local ok, a, b, c
  if fn_arg1 == nil then
    ok, a, b, c = timeout(seconds, op)
  else
    ok, a, b, c = timeout(seconds, op, fn_arg1, fn_arg2)
  end
  self.waiting = "done"
  return ok, a, b, c
end

local function new_tcp()
  local sock = setmetatable({
    false,   -- [1]: the fast paths' stream (see `idle`)
    nil,     -- [2], BUSY: the task in a wait on the socket (see the top of this file)
    DEFAULT_TIMEOUT * 1000000000,   -- [3], READ_NS: read_timeout in nanoseconds
    s = nil, key = nil, reused = 0, tls = nil, dirty = false, pending = nil,
    connect_timeout = DEFAULT_TIMEOUT, send_timeout = DEFAULT_TIMEOUT,
    read_timeout = DEFAULT_TIMEOUT, waiting = false, limit = nil,
    -- the two methods a driver calls per command, found in the socket
    -- itself rather than through __index (about 40 instructions a call)
    receive = Tcp.receive, send = Tcp.send,
  }, Tcp)
  return sock
end

-- `level`: where the error is reported, counted from here (default 3: the
-- caller of a Lua method; 4 for receive's and send's general paths, which
-- their C methods call).
local function check_self(self, fname, level)
  if getmetatable(self) ~= Tcp then
    error(fmt("bad argument #1 to '%s' (a socket from ngx.socket.tcp() expected, got %s)",
              fname, type(self)), level or 3)
  end
end

-- Before a wait: nil if the socket can be used, else the error results.
-- A `busy` left by a dropped wait (the task is done, or it is this very
-- task, which cannot be in two waits) means the request it belonged to was
-- cut short: the connection is closed, never used again.
local function enter(self, what)
  if self.s == nil then return "closed" end
  local b = self[BUSY]
  if b ~= nil then
    local me = current()
    if b == me or b:done() then
      drop(self)
      return "closed"
    end
    return "socket busy " .. what
  end
  self[BUSY] = current()
  self[1] = false
  return nil
end

-- The end of a wait or of a call that set `busy`: the socket is idle
-- again. self[1] is the one field the C fast paths read: the stream while
-- the socket is connected, not in a wait and has no read-ahead (`pending`),
-- false otherwise; it is cleared wherever one of those starts (`enter`,
-- `drop`, setkeepalive) and set again here, after `pending` has its new
-- value. The C wait of a receive (lua/ngx.c) leaves it set: the read it
-- waits on makes both fast paths decline until it is over.
local function idle(self)
  self[BUSY] = nil
  self[1] = self.pending == nil and self.s or false
end

-- An I/O error: OpenResty closes the socket on any error but a timeout.
local function fail(self, msg, partial)
  drop(self)
  return nil, errmsg(msg), partial
end

-- A timeout: the socket stays open (since ngx_lua 0.8.8), but what was
-- asked may still come, so the connection never goes back to the pool.
-- What had arrived is returned as the partial result and consumed, as
-- OpenResty does.
local function timed_out(self, prefix)
  idle(self)
  self.dirty = true
  local s = self.s
  local n = s:buffered()
  local got = n > 0 and s:read_some(n) or ""
  if prefix then got = prefix .. got end
  return nil, "timeout", got
end

-- The pool keys of host and port, made once: pool.key formats the port.
-- Forgotten all at once past KEYS_MAX hosts (a program that connects to
-- ever new hosts does not grow it without bound).
local keys, nkeys, KEYS_MAX = {}, 0, 1000
local pool_give = pool._give

-- Make a new connection with the socket's connect timeout: conn, or nil, err.
local function dial(self, host, port, path)
  local conn, msg
  if path then
    local unix = quench.unix
    if unix == nil then
      return nil, "unix domain sockets need quench.unix, which this build lacks"
    end
    if unix.connect_op then
      local ok
      ok, conn, msg = timeout(self.connect_timeout, unix.connect_op(path))
      if not ok then return nil, "timeout" end
    else
      conn, msg = unix.connect(path)   -- a Unix socket connects at once
    end
  else
    local ok
    ok, conn, msg = timeout(self.connect_timeout, tcp_connect_op(host, port, { nodelay = true }))
    if not ok then return nil, "timeout" end
  end
  if not conn then return nil, errmsg(msg) end
  return conn
end

-- Connect queueing (opts.backlog, OpenResty's semantics): per pool name,
-- at most `size` connections exist (in use by a socket, or idle in the
-- pool); a connect beyond that waits, FIFO, for one to be closed or kept
-- alive, at most the connect timeout; beyond `backlog` waiting connects,
-- it fails at once. `inuse` counts the sockets holding one of the pool's
-- connections (or dialling one); the idle ones are pool.count(key).
-- Per run: forgotten when the run ends.
local limits, limits_hooked = {}, false

local function forget_limits() limits, limits_hooked = {}, false end

local function limit_of(key, opts)
  local backlog, size = opts.backlog, opts.pool_size
  if math_type(backlog) ~= "integer" then
    local b = tonumber(backlog)
    if b == nil or b ~= floor(b) then
      error("bad argument #3 to 'connect' (opts.backlog must be an integer >= 0, got "
            .. tostring(backlog) .. ")", 3)
    end
    backlog = floor(b)
  end
  if backlog < 0 then
    error("bad argument #3 to 'connect' (opts.backlog must be an integer >= 0, got "
          .. tostring(backlog) .. ")", 3)
  end
  if size == nil then
    size = pool.DEFAULT_SIZE   -- lua_socket_pool_size's default, 30
  else
    local n = tonumber(size)
    if n == nil or n < 1 or n ~= floor(n) then
      error("bad argument #3 to 'connect' (opts.pool_size must be an integer >= 1, got "
            .. tostring(size) .. ")", 3)
    end
    size = floor(n)
  end
  local st = limits[key]
  if st == nil then   -- the first connect with a backlog makes the limit, as OpenResty
    if not limits_hooked then
      quench._at_exit(forget_limits)
      limits_hooked = true
    end
    st = { size = size, backlog = backlog, inuse = 0, waiting = 0, notify = quench.notify() }
    limits[key] = st
  end
  return st
end

-- One of the pool's connections is no longer held by a socket: the first
-- waiting connect may go on.
local function release(st)
  st.inuse = st.inuse - 1
  if st.waiting > 0 then st.notify:notify_one() end
end

-- The waiting count and the dialling slot, given back however the wait or
-- the dial ends (returned, timed out, dropped).
local Waiting = { __close = function(w) w.st.waiting = w.st.waiting - 1 end }
local Slot = { __close = function(sl) if sl.st then release(sl.st) end end }

-- Wait in the queue of st: true when a connection may be made, or an idle
-- connection taken from the pool (stream, reused, data), or nil, err.
local function queue(self, st, key)
  if st.waiting >= st.backlog then return nil, "too many waiting connect operations" end
  local deadline = quench.now() + self.connect_timeout
  st.waiting = st.waiting + 1
  local _w <close> = setmetatable({ st = st }, Waiting)
  while true do
    -- woken by a release, or every second: an idle connection that expired
    -- in the pool frees a place without anyone releasing it
    local until_ = math.min(deadline, quench.now() + 1)
    quench.deadline(until_, st.notify:notified_op())
    local s, reused, data = pool.take(key)
    if s then return s, reused, data end
    if st.inuse + pool.count(key) < st.size then return true end
    if quench.now() >= deadline then return nil, "timeout" end
  end
end

--- connect(host, port [, opts]) or connect("unix:/path" [, opts]).
function Tcp:connect(host, port, opts)
  check_self(self, "connect")
  if type(host) ~= "string" then
    error("bad argument #1 to 'connect' (host string expected, got " .. type(host) .. ")", 2)
  end
  local path = host:match("^unix:(.+)$")
  if path then
    if type(port) == "table" then opts = port end
    port = nil
  else
    local p = tonumber(port)
    if p == nil or p < 0 or p > 65535 or p ~= floor(p) then
      error("bad argument #2 to 'connect' (port number expected, got " .. tostring(port) .. ")", 2)
    end
    port = floor(p)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #3 to 'connect' (options table expected, got " .. type(opts) .. ")", 2)
  end
  if self.s then drop(self) end   -- OpenResty closes the old connection first
  local key = opts and opts.pool
  if key ~= nil and type(key) ~= "string" then
    error("bad argument #3 to 'connect' (opts.pool must be a string)", 2)
  end
  if key == nil then
    if path then
      key = host
    else
      local by_port = keys[host]
      if by_port == nil then
        if nkeys >= KEYS_MAX then keys, nkeys = {}, 0 end
        by_port, nkeys = {}, nkeys + 1
        keys[host] = by_port
      end
      key = by_port[port]
      if key == nil then key = pool.key(host, port); by_port[port] = key end
    end
  end
  local st
  if opts and opts.backlog ~= nil then st = limit_of(key, opts) end
  self.key, self.reused = key, 0
  local s, reused, data = pool.take(key)
  if s then
    self.s, self.reused, self.tls, self[1] = s, reused, data, s
    if st then st.inuse, self.limit = st.inuse + 1, st end
    return 1
  end
  if st == nil then
    local conn, msg = dial(self, host, port, path)
    if not conn then return nil, msg end
    self.s, self[1] = conn, conn
    return 1
  end
  -- the pool is full (pool_size connections, in use or idle): queue
  if st.inuse + pool.count(key) >= st.size then
    local conn, r2, d2 = queue(self, st, key)
    if conn == nil then return nil, r2 end
    if conn ~= true then   -- an idle connection came back while we waited
      self.s, self.reused, self.tls, self[1] = conn, r2, d2, conn
      st.inuse, self.limit = st.inuse + 1, st
      return 1
    end
  end
  -- a slot of the pool is ours from now; a failed or dropped dial gives it back
  st.inuse = st.inuse + 1
  local slot <close> = setmetatable({ st = st }, Slot)
  local conn, msg = dial(self, host, port, path)
  slot.st = nil
  if not conn then
    release(st)
    return nil, msg
  end
  self.s, self.limit, self[1] = conn, st, conn
  return 1
end

function Tcp:settimeout(ms)
  check_self(self, "settimeout")
  if type(ms) == "table" then
    -- OpenResty reads it with lua_tonumber: 0, the default timeout.
    -- lua-nginx-redis-connector 0.06 passes its own object by mistake
    -- (`r:set_timeout(self, config.read_timeout)`) and relies on that.
    ngx.log(ngx.WARN, "settimeout: a table is not a timeout; the default is used, as OpenResty does")
    ms = nil
  end
  local t = check_ms("settimeout", 2, ms, true)
  t = (t == nil or t == 0) and DEFAULT_TIMEOUT or t / 1000
  self.connect_timeout, self.send_timeout, self.read_timeout, self[READ_NS] = t, t, t, false
end

function Tcp:settimeouts(connect_ms, send_ms, read_ms)
  check_self(self, "settimeouts")
  local c = check_ms("settimeouts", 2, connect_ms, true)
  local s = check_ms("settimeouts", 3, send_ms, true)
  local r = check_ms("settimeouts", 4, read_ms, true)
  self.connect_timeout = (c == nil or c == 0) and DEFAULT_TIMEOUT or c / 1000
  self.send_timeout = (s == nil or s == 0) and DEFAULT_TIMEOUT or s / 1000
  self.read_timeout = (r == nil or r == 0) and DEFAULT_TIMEOUT or r / 1000
  self[READ_NS] = false
end

-- Flatten a (possibly nested) array of strings, numbers and booleans;
-- errors at `level` (as tostr_send's) plus one per table of depth.
local function flatten(t, out, depth, level)
  if depth > 100 then
    error("bad argument #2 to 'send' (table nested too deep)", level + 1 + depth)
  end
  for i = 1, #t do
    local v = t[i]
    local tv = type(v)
    if tv == "string" or tv == "number" then out[#out + 1] = v
    elseif tv == "boolean" then out[#out + 1] = v and "true" or "false"
    elseif tv == "table" then flatten(v, out, depth + 1, level)
    else
      error("bad argument #2 to 'send' (bad data type " .. tv .. " found in the array)",
            level + 1 + depth)
    end
  end
  return out
end

-- `level`: as check_self's (default 3).
local function tostr_send(data, level)
  local td = type(data)
  if td == "string" then return data end
  level = level or 3
  if td == "table" then
    local ok, s = pcall(concat, data)
    if ok then return s end
    return concat(flatten(data, {}, 0, level))
  end
  if td == "number" then return tostring(data) end
  if td == "boolean" then return data and "true" or "false" end
  if data == ngx.null then return "null" end
  error("bad argument #2 to 'send' (string, number, boolean, nil, ngx.null or array "
        .. "table expected, got " .. td .. ")", level)
end

-- send(data): the number of bytes sent, or nil, err. Its general path:
-- Tcp.send (below, lua/ngx.c) calls this when its C fast path (a string
-- or a flat array written at once, nothing to wait for) declines.
local function slow_send(self, data)
  check_self(self, "send", 4)
  local str = tostr_send(data, 4)
  local e = enter(self, "writing")
  if e then return nil, e end
  local s = self.s
  local ok, r, msg
  if s:queued() == 0 then   -- write waits only above the write limit: not now
    r, msg = s:write(str)
    ok = true
  else
    ok, r, msg = wait(self, self.send_timeout, s:write_op(str))
  end
  if not ok then
    idle(self)
    self.dirty = true
    return nil, "timeout"
  end
  idle(self)
  if not r then return fail(self, msg) end
  return #str
end

-- c_receive (a line: n nil; everything to EOF: n "a"; n bytes; with
-- `some`, at least one and at most n) within the read timeout, under the
-- socket's guard (as `wait`): its results.
local function guarded_read(self, s, n, some)
  self.waiting = true
  local _guard <close> = self
  local data, msg, partial = c_receive(s, n, self.read_timeout, some)
  self.waiting = "done"
  return data, msg, partial
end

-- A line (n nil), everything (n "a") or n bytes, after `prefix` (bytes
-- receiveuntil left over, or nil): receive's results.
local function receive_timed(self, s, n, prefix)
  local data, msg, partial = guarded_read(self, s, n)
  if data then
    idle(self)
    if prefix then return prefix .. data end
    return data
  end
  if data == false then return timed_out(self, prefix) end
  if prefix then partial = prefix .. partial end
  return fail(self, msg, partial)
end

-- receive(pattern?): "*l" (default; the line without "\r\n" or "\n"),
-- "*a" (everything to EOF), or a count (a number or a numeric string).
-- Its general path: Tcp.receive (below, lua/ngx.c) does a line or a count
-- on a usable idle socket in one C call, buffered whole or waited for
-- there (under the socket's guard, as `wait`, with the read timeout as
-- the read's own deadline: the wait every request/response protocol makes
-- once per reply), and calls this otherwise.
local function slow_receive(self, pat)
  check_self(self, "receive", 4)
  local n
  if pat == nil or pat == "*l" then
    n = nil
  elseif pat == "*a" then
    n = "a"
  else
    n = tonumber(pat)
    if n == nil then
      error("bad argument #2 to 'receive' (bad pattern argument: " .. tostring(pat) .. ")", 3)
    end
    if n < 0 or n ~= n then
      error("bad argument #2 to 'receive' (bad pattern argument: " .. tostring(pat) .. ")", 3)
    end
    n = floor(n)
  end
  local e = enter(self, "reading")
  if e then return nil, e end
  local s = self.s
  local prefix = self.pending
  if prefix then
    -- bytes receiveuntil read past its pattern come first
    if n == nil then
      local i = find(prefix, "\n", 1, true)
      if i then
        self.pending = i < #prefix and sub(prefix, i + 1) or nil
        idle(self)
        local j = (i > 1 and byte(prefix, i - 1) == 13) and i - 2 or i - 1
        return sub(prefix, 1, j)
      end
    elseif n ~= "a" and #prefix >= n then
      self.pending = n < #prefix and sub(prefix, n + 1) or nil
      idle(self)
      return sub(prefix, 1, n)
    end
    self.pending = nil
    if n ~= nil and n ~= "a" then n = n - #prefix end
  end
  if n == 0 then
    idle(self)
    return prefix or ""
  end
  return receive_timed(self, s, n, prefix)
end

-- receive's results after its C wait that did not get the bytes: false
-- (the read timeout) or nil, msg, partial (EOF, an error).
local function after_receive(self, r, msg, partial)
  if r == false then return timed_out(self) end
  return fail(self, msg, partial)
end

--- receive(pattern?) and send(data): C methods (lua/ngx.c) that do the
-- common calls at once (send: nothing has to wait; receive: a line or a
-- count, waited for if need be) and call slow_receive / slow_send for the
-- rest.
Tcp.receive, Tcp.send = C.fast(Tcp, slow_receive, slow_send, after_receive)

--- receiveany(max): whatever has arrived, at least one byte, at most max.
function Tcp:receiveany(max)
  check_self(self, "receiveany")
  local m = tonumber(max)
  if m == nil or m < 1 or m ~= m then
    error("bad argument #2 to 'receiveany' (bad max argument: " .. tostring(max) .. ")", 2)
  end
  m = floor(m)
  local e = enter(self, "reading")
  if e then return nil, e end
  local p = self.pending
  if p then
    if #p > m then
      self.pending = sub(p, m + 1)
      idle(self)
      return sub(p, 1, m)
    end
    self.pending = nil
    idle(self)
    return p
  end
  local s = self.s
  local data, msg
  if s:buffered() > 0 then
    data = s:read_some(m)
  else
    data, msg = guarded_read(self, s, m, true)
    if data == false then return timed_out(self) end
  end
  if data == nil then return fail(self, msg or "closed") end
  idle(self)
  return data
end

--- receiveuntil(pattern [, {inclusive = bool}]): an iterator reader(size?)
-- returning the data before the next `pattern` (plain text, not a Lua
-- pattern). With `size`, at most `size` bytes a call, then nil (no error)
-- once the pattern is passed.
function Tcp:receiveuntil(pattern, opts)
  check_self(self, "receiveuntil")
  if type(pattern) ~= "string" or pattern == "" then
    error("bad argument #2 to 'receiveuntil' (pattern must be a non-empty string)", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #3 to 'receiveuntil' (options table expected, got " .. type(opts) .. ")", 2)
  end
  local inclusive = opts and opts.inclusive and true or false
  local plen = #pattern
  local finished = false   -- size mode: the pattern was passed; the next call says nil

  -- More bytes into self.pending; false, results on failure.
  local function fill(sock)
    local s = sock.s
    local data, msg
    if s:buffered() > 0 then
      data = s:read_some(65536)
    else
      data, msg = guarded_read(sock, s, 65536, true)
    end
    if data == false then
      local p = sock.pending
      sock.pending = nil
      return false, timed_out(sock, p)
    end
    if data == nil then
      local p = sock.pending
      sock.pending = nil
      return false, fail(sock, msg or "closed", p or "")
    end
    sock.pending = sock.pending and sock.pending .. data or data
    return true
  end

  local sock = self
  return function(size)
    if size ~= nil then
      local n = tonumber(size)
      if n == nil or n < 1 or n ~= n then
        error("bad argument #1 to 'receiveuntil' iterator (size must be a positive number)", 2)
      end
      size = floor(n)
    end
    if finished then finished = false; return nil end
    local e = enter(sock, "reading")
    if e then return nil, e end
    local from = 1
    while true do
      local buf = sock.pending
      if buf then
        local i = find(buf, pattern, from, true)
        if i then
          if size and i - 1 > size then
            sock.pending = sub(buf, size + 1)
            idle(sock)
            return sub(buf, 1, size)
          end
          local stop = i + plen - 1
          sock.pending = stop < #buf and sub(buf, stop + 1) or nil
          idle(sock)
          if size then finished = true end
          return sub(buf, 1, inclusive and stop or i - 1)
        end
        -- the bytes that cannot begin the pattern are safe to hand out
        local safe = #buf - plen + 1
        if size and safe >= size then
          sock.pending = sub(buf, size + 1)
          idle(sock)
          return sub(buf, 1, size)
        end
        from = safe > 1 and safe or 1
      end
      local ok, r1, r2, r3 = fill(sock)
      if not ok then return r1, r2, r3 end
    end
  end
end

function Tcp:close()
  check_self(self, "close")
  if self.s == nil then return nil, "closed" end
  drop(self)
  return 1
end

--- setkeepalive(max_idle_ms?, pool_size?): put the connection in the
-- pool; the socket object is then closed (it can connect again).
function Tcp:setkeepalive(max_idle_ms, pool_size)
  check_self(self, "setkeepalive")
  local idle_ms = check_ms("setkeepalive", 2, max_idle_ms, true)
  local size
  if pool_size ~= nil then
    size = tonumber(pool_size)
    if size == nil or size < 1 or size ~= floor(size) then
      error("bad argument #3 to 'setkeepalive' (pool size must be a positive integer, got "
            .. tostring(pool_size) .. ")", 2)
    end
  end
  local s = self.s
  if s == nil then return nil, "closed" end
  local dubious
  if self[BUSY] ~= nil then
    local b = self[BUSY]
    if b ~= current() and not b:done() then return nil, "socket busy" end
    dubious = "connection in dubious state"
  elseif self.dirty then
    dubious = "connection in dubious state"
  elseif self.pending then
    dubious = "connection in dubious state"   -- receiveuntil read past what was asked
  end
  local key, reused, tls = self.key, self.reused, self.tls
  self.s, self[BUSY], self.dirty, self.pending, self.tls = nil, nil, false, nil, nil
  self[1] = false
  local st = self.limit
  local ok, err
  if dubious then
    pcall(s.close, s)
    ok, err = nil, dubious
  else
    ok, err = pool_give(key, s, idle_ms == nil and pool.DEFAULT_IDLE or idle_ms / 1000,
                        size and math.tointeger(size) or pool.DEFAULT_SIZE, reused, tls)
  end
  if st then   -- idle in the pool now (counted there), or closed: a waiter may go on
    self.limit = nil
    st.inuse = st.inuse - 1
    if st.waiting > 0 then st.notify:notify_one() end
  end
  if ok then return 1 end
  -- OpenResty's word for every refusal but a closed connection
  return nil, err == "closed" and err or "connection in dubious state"
end

function Tcp:getreusedtimes()
  check_self(self, "getreusedtimes")
  if self.s == nil then return nil, "closed" end
  return self.reused
end

-- TLS client contexts, one per (verify, trusted certificates): an
-- SSL_CTX loads its CA store once, not at every handshake.
local tls_contexts = {}
local function tls_context(verify)
  local cafile = M.ssl_trusted_certificate
  local key = tostring(verify) .. "\0" .. tostring(cafile)
  local ctx = tls_contexts[key]
  if ctx == nil then
    ctx = quench.tls.context({ verify = verify, cafile = cafile })
    tls_contexts[key] = ctx
  end
  return ctx
end

--- sslhandshake(reused_session, server_name, verify): TLS on quench.tls
-- (stream:starttls). Returns a session (quench.tls.session) to pass as
-- `reused_session` next time, or `true` when `reused_session` is false.
function Tcp:sslhandshake(reused_session, server_name, verify)
  check_self(self, "sslhandshake")
  if server_name ~= nil and type(server_name) ~= "string" then
    error("bad argument #3 to 'sslhandshake' (server name string expected, got "
          .. type(server_name) .. ")", 2)
  end
  if self.s == nil then return nil, "closed" end
  verify = verify and true or false
  local want = { server_name = server_name, verify = verify }
  local have = self.tls
  local s = self.s
  if have then
    if have.server_name == want.server_name and have.verify == want.verify then
      -- a pooled connection, secured already with these parameters
      if reused_session == false then return true end
      return s.session and s:session() or true
    end
    drop(self)
    return nil, "connection already secured with other TLS parameters"
  end
  if s.starttls == nil or quench.tls == nil then
    return nil, "TLS needs quench.tls (stream:starttls), which this build lacks"
  end
  local opts = { context = tls_context(verify), servername = server_name }
  if reused_session ~= nil and reused_session ~= false and reused_session ~= true then
    opts.session = reused_session
  end
  local e = enter(self, "handshaking")
  if e then return nil, e end
  local ok, r, msg = wait(self, self.connect_timeout, s.starttls, s, opts)
  if not ok then return fail(self, "timeout") end
  idle(self)
  if not r then return fail(self, msg) end
  self.tls = want
  if reused_session == false then return true end
  return s.session and s:session() or true
end

function Tcp:setoption()
  check_self(self, "setoption")
  return true   -- OpenResty's own setoption is a no-op in 0.10.23 for most options
end

-------------------------------------------------------------------------------
-- UDP cosocket
-------------------------------------------------------------------------------

local Udp = {}
Udp.__index = Udp
Udp.__name = "quench.ngx.udp"

local function check_udp(self, fname)
  if getmetatable(self) ~= Udp then
    error(fmt("bad argument #1 to '%s' (a socket from ngx.socket.udp() expected, got %s)",
              fname, type(self)), 3)
  end
end

function Udp:settimeout(ms)
  check_udp(self, "settimeout")
  local t = check_ms("settimeout", 2, ms, true)
  self.timeout = (t == nil or t == 0) and DEFAULT_TIMEOUT or t / 1000
end

function Udp:setpeername(host, port)
  check_udp(self, "setpeername")
  if type(host) ~= "string" then
    error("bad argument #1 to 'setpeername' (host string expected, got " .. type(host) .. ")", 2)
  end
  local path = host:match("^unix:(.+)$")
  if path then
    -- a Unix datagram socket (quench.unix.dgram), unnamed and connected to
    -- the path: what lua-resty-logger-socket's unix "udp" sink asks for
    if self.u then self.u:close(); self.u = nil end
    local u, m = quench.unix.dgram()
    if not u then return nil, errmsg(m) end
    local ok, cm = u:connect(path)
    if not ok then
      u:close()
      return nil, errmsg(cm)
    end
    self.u, self.host, self.port, self.unix = u, nil, nil, true
    return 1
  end
  local p = tonumber(port)
  if p == nil or p < 0 or p > 65535 or p ~= floor(p) then
    error("bad argument #2 to 'setpeername' (port number expected, got " .. tostring(port) .. ")", 2)
  end
  if self.u then self.u:close(); self.u = nil end
  self.unix = nil
  local ok, list, msg = timeout(self.timeout, quench.dns.getaddrinfo_op(host, { socktype = "dgram" }))
  if not ok then return nil, "timeout" end
  if not list or not list[1] then return nil, errmsg(msg or "no address") end
  local addr, fam = list[1].addr, list[1].family
  local u, m = quench.udp.bind(fam == "inet6" and "::" or "0.0.0.0", 0)
  if not u then return nil, errmsg(m) end
  self.u, self.host, self.port = u, addr, floor(p)
  return 1
end

function Udp:send(data)
  check_udp(self, "send")
  local str = tostr_send(data)
  if not self.u then return nil, "closed" end
  local op
  if self.unix then op = self.u:send_op(str) else op = self.u:send_op(str, self.host, self.port) end
  local ok, r, msg = timeout(self.timeout, op)
  if not ok then return nil, "timeout" end
  if not r then return nil, errmsg(msg) end
  return 1
end

--- receive(size?): the next datagram from the peer (others are dropped,
-- as a connected UDP socket does), at most `size` bytes (default 8192).
function Udp:receive(size)
  check_udp(self, "receive")
  local n = 8192
  if size ~= nil then
    n = tonumber(size)
    if n == nil or n < 1 or n > 65536 then
      error("bad argument #2 to 'receive' (size must be 1..65536, got " .. tostring(size) .. ")", 2)
    end
    n = floor(n)
  end
  local u = self.u
  if not u then return nil, "closed" end
  local deadline = quench.now() + self.timeout
  while true do
    local ok, data, host, port = quench.deadline(deadline, u:recv_op(n))
    if not ok then return nil, "timeout" end
    if data == nil then return nil, errmsg(host) end
    -- a connected Unix socket hears its peer only (the kernel filters)
    if self.unix or (host == self.host and port == self.port) then return data end
  end
end

function Udp:close()
  check_udp(self, "close")
  if not self.u then return nil, "closed" end
  self.u:close()
  self.u = nil
  return 1
end

-------------------------------------------------------------------------------
-- ngx
-------------------------------------------------------------------------------

ngx.null = C.null
ngx.OK, ngx.ERROR, ngx.AGAIN, ngx.DONE, ngx.DECLINED = 0, -1, -2, -4, -5
ngx.STDERR, ngx.EMERG, ngx.ALERT, ngx.CRIT, ngx.ERR = 0, 1, 2, 3, 4
ngx.WARN, ngx.NOTICE, ngx.INFO, ngx.DEBUG = 5, 6, 7, 8

ngx.socket = {
  tcp = new_tcp,
  udp = function() return setmetatable({ timeout = DEFAULT_TIMEOUT }, Udp) end,
}
ngx.socket.stream = ngx.socket.tcp

ngx.sleep = quench.sleep

-- Wall-clock seconds since the epoch, with milliseconds.
function ngx.now() return floor(C.wall() * 1000) / 1000 end
function ngx.time() return floor(C.wall()) end
function ngx.update_time() end   -- ngx.now reads the clock every call: nothing is cached
function ngx.today() return os.date("%Y-%m-%d") end
function ngx.localtime() return os.date("%Y-%m-%d %H:%M:%S") end
function ngx.utctime() return os.date("!%Y-%m-%d %H:%M:%S") end

local LEVEL_NAMES = { [0] = "stderr", "emerg", "alert", "crit", "error", "warn", "notice",
  "info", "debug" }

-- The log sink and its level (nginx's error_log default is "error").
M.log_level = ngx.ERR
M.log_sink = function(level, msg)
  io.stderr:write(os.date("%Y/%m/%d %H:%M:%S"), " [", LEVEL_NAMES[level], "] ", msg, "\n")
end

function ngx.log(level, ...)
  if math_type(level) ~= "integer" or LEVEL_NAMES[level] == nil then
    error("bad argument #1 to 'log' (a log level such as ngx.ERR expected, got "
          .. tostring(level) .. ")", 2)
  end
  if level > M.log_level then return end
  local n = select("#", ...)
  local parts = { ... }
  for i = 1, n do
    local v = parts[i]
    if v == nil then parts[i] = "nil"
    elseif v == ngx.null then parts[i] = "null"
    elseif type(v) ~= "string" then parts[i] = tostring(v) end
  end
  M.log_sink(level, concat(parts, "", 1, n))
end

ngx.timer = {}

-- The timers of this run that have not fired yet (record -> true), and
-- whether the at-exit call that fires them prematurely is registered.
local pending_timers, timers_hooked, exiting, timer_seq = {}, false, false, 0

-- How long premature callbacks may go on at the end of a run (seconds):
-- OpenResty lets them do cosocket I/O while the worker exits, bounded by
-- nginx's worker_shutdown_timeout; here by this grace, so that the end of
-- a run cannot hang on a callback that never returns. install{timer_grace}.
M.timer_grace = 3

-- When the run ends (its main task is done), every pending timer is
-- called with premature = true, each in a task of its own, started in the
-- order the timers were made, as OpenResty does when its worker exits;
-- ngx.worker.exiting() is true meanwhile. The callbacks may wait (a
-- cosocket, ngx.sleep): the run goes on until they are all done, at most
-- M.timer_grace seconds (on the run's clock); those still running then are
-- aborted, with a warning. The task returned is the one quench.run drives
-- to its end (quench._at_exit).
local function fire_premature()
  local list, set = {}, pending_timers
  for rec in pairs(set) do list[#list + 1] = rec end
  -- out of the set its sleeping task checks: a timer whose delay ends
  -- while the premature callbacks run is not called a second time
  for _, rec in ipairs(list) do set[rec] = nil end
  pending_timers, timers_hooked = {}, false
  if #list == 0 then return nil end
  table.sort(list, function(a, b) return a.seq < b.seq end)
  exiting = true
  local grace = M.timer_grace
  return quench.spawn(function()
    -- however this task ends (done, or aborted by the run's shutdown when a
    -- manual clock stalls), the next run does not start "exiting"
    local _exiting <close> = setmetatable({}, { __close = function() exiting = false end })
    local tasks = {}
    for i, rec in ipairs(list) do
      tasks[i] = quench.spawn(rec.callback, true, table.unpack(rec.args, 1, rec.args.n))
    end
    local function join_all()
      for _, h in ipairs(tasks) do
        local ok, err = h:join()
        if not ok then
          ngx.log(ngx.ERR, "lua entry thread aborted: runtime error: ", tostring(err))
        end
      end
    end
    if not quench.timeout(grace, join_all) then
      local n = 0
      for _, h in ipairs(tasks) do
        if not h:done() then
          n = n + 1
          h:abort("premature timer past the exit grace")
          h:join()   -- observed: its failure is this warning, not a report
        end
      end
      ngx.log(ngx.ERR, n, " premature timer(s) still running after ", grace,
              " s at exit: aborted")
    end
  end)
end

--- timer.at(delay, callback, ...): a detached task that calls
-- callback(false, ...) after `delay` seconds, or callback(true, ...) when
-- the run ends first. Returns true; nil, "process exiting" when called
-- while the run is ending.
function ngx.timer.at(delay, callback, ...)
  local d = tonumber(delay)
  if d == nil or d < 0 or d ~= d then
    error("bad argument #1 to 'timer.at' (delay in seconds >= 0 expected, got "
          .. tostring(delay) .. ")", 2)
  end
  if type(callback) ~= "function" then
    error("bad argument #2 to 'timer.at' (function expected, got " .. type(callback) .. ")", 2)
  end
  if exiting then return nil, "process exiting" end
  if not timers_hooked then
    quench._at_exit(fire_premature)
    timers_hooked = true
  end
  timer_seq = timer_seq + 1
  local rec = { callback = callback, args = table.pack(...), seq = timer_seq }
  local set = pending_timers
  set[rec] = true
  local h = quench.spawn(function()
    if d > 0 then quench.sleep(d) end
    if set[rec] == nil then return end
    set[rec] = nil
    callback(false, table.unpack(rec.args, 1, rec.args.n))
  end)
  h:detach()
  return true
end

ngx.worker = {
  exiting = function() return exiting end,
  id = function() return 0 end,
  count = function() return 1 end,
}

-- URI escaping: as ngx.escape_uri (RFC 3986 component: all but
-- ALPHA / DIGIT / "-" / "." / "_" / "~" is %XX, upper-case hex).
local function esc(c) return fmt("%%%02X", byte(c)) end
function ngx.escape_uri(s)
  if type(s) == "number" then s = tostring(s) end
  if type(s) ~= "string" then
    if s == nil then return "" end
    error("bad argument #1 to 'escape_uri' (string expected, got " .. type(s) .. ")", 2)
  end
  return (s:gsub("[^%w%-%._~]", esc))
end

local function unesc(h) return char(tonumber(h, 16)) end
function ngx.unescape_uri(s)
  if type(s) == "number" then s = tostring(s) end
  if type(s) ~= "string" then
    if s == nil then return "" end
    error("bad argument #1 to 'unescape_uri' (string expected, got " .. type(s) .. ")", 2)
  end
  return (s:gsub("+", " "):gsub("%%(%x%x)", unesc))
end

-- Base64 (RFC 4648, with padding on output; ngx.decode_base64 accepts
-- input with or without padding and returns nil for anything else).
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local ENC, DEC = {}, {}
for i = 1, 64 do ENC[i - 1] = sub(B64, i, i); DEC[byte(B64, i)] = i - 1 end

function ngx.encode_base64(s, no_padding)
  if type(s) == "number" then s = tostring(s) end
  if type(s) ~= "string" then
    error("bad argument #1 to 'encode_base64' (string expected, got " .. type(s) .. ")", 2)
  end
  local out, n = {}, #s
  for i = 1, n - 2, 3 do
    local a, b, c = byte(s, i, i + 2)
    local v = a << 16 | b << 8 | c
    out[#out + 1] = ENC[v >> 18] .. ENC[v >> 12 & 63] .. ENC[v >> 6 & 63] .. ENC[v & 63]
  end
  local r = n % 3
  if r == 1 then
    local v = byte(s, n) << 16
    out[#out + 1] = ENC[v >> 18] .. ENC[v >> 12 & 63] .. (no_padding and "" or "==")
  elseif r == 2 then
    local a, b = byte(s, n - 1, n)
    local v = a << 16 | b << 8
    out[#out + 1] = ENC[v >> 18] .. ENC[v >> 12 & 63] .. ENC[v >> 6 & 63] .. (no_padding and "" or "=")
  end
  return concat(out)
end

function ngx.decode_base64(s)
  if type(s) ~= "string" then
    error("bad argument #1 to 'decode_base64' (string expected, got " .. type(s) .. ")", 2)
  end
  s = s:gsub("=+$", "", 1)
  local n = #s
  if n % 4 == 1 then return nil end
  local out = {}
  for i = 1, n, 4 do
    local a, b, c, d = byte(s, i, i + 3)
    a, b = DEC[a], DEC[b]
    if a == nil or b == nil then return nil end
    local v = a << 18 | b << 12
    if c == nil then
      out[#out + 1] = char(v >> 16)
    else
      c = DEC[c]
      if c == nil then return nil end
      v = v | c << 6
      if d == nil then
        out[#out + 1] = char(v >> 16, v >> 8 & 255)
      else
        d = DEC[d]
        if d == nil then return nil end
        v = v | d
        out[#out + 1] = char(v >> 16, v >> 8 & 255, v & 255)
      end
    end
  end
  return concat(out)
end

ngx.md5 = C.md5
ngx.md5_bin = C.md5_bin
ngx.sha1_bin = C.sha1_bin

-- ngx.config: the ngx_lua whose API quench.ngx follows (0.10.23, Debian
-- 12's), so drivers that check a version find what they need.
ngx.config = {
  debug = false, ngx_lua_version = 10023, nginx_version = 1022001, subsystem = "http",
  prefix = function() return "" end, nginx_configure = function() return "" end,
}

-- ngx.re: match, find, gmatch, sub, gsub on PCRE2 (quench.ngx_re, over
-- Debian's lua-rex-pcre2), loaded at first use.
ngx.re = setmetatable({}, { __index = function(t, k)
  for name, f in pairs(require "quench.ngx_re") do rawset(t, name, f) end
  return rawget(t, k)
end })

-- A package searcher: "nginx.X" (Debian renames the drivers' own
-- "resty.X" requires so: resty.websocket.client requires
-- "nginx.websocket.protocol").
local function nginx_searcher(name)
  if not name:match("^nginx%.") then return nil end
  local path = M.resty_path or M.RESTY_PATH
  local file, err = package.searchpath(name, path)
  if not file then return "\n\tno OpenResty driver in " .. path .. ": " .. tostring(err) end
  local f, lerr = loadfile(file)
  if not f then error("error loading module '" .. name .. "' from " .. file .. ":\n\t" .. lerr, 2) end
  return f, file
end

local function add_nginx_searcher()
  for _, s in ipairs(package.searchers) do
    if s == nginx_searcher then return end
  end
  table.insert(package.searchers, nginx_searcher)
end

-- LuaJIT's modules that OpenResty drivers require, for a Lua without them:
-- `bit` (LuaBitOp, quench.bit) and `ffi` (the char buffers of
-- resty.websocket.protocol, quench.ffi), unless one is installed.
local function preload_luajit_modules()
  for name, mod in pairs({ bit = "quench.bit", ffi = "quench.ffi" }) do
    if package.loaded[name] == nil and package.preload[name] == nil
       and not package.searchpath(name, package.cpath) then
      package.preload[name] = function() return require(mod) end
    end
  end
end

-- CRC-32 (IEEE 802.3, zlib's), as ngx.crc32_short / crc32_long (one
-- function: they differ only in nginx's choice of loop for short input).
local CRC = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if c & 1 == 1 then c = 0xEDB88320 ~ (c >> 1) else c = c >> 1 end
  end
  CRC[i] = c
end
local function crc32(s)
  if type(s) == "number" then s = tostring(s) end
  if type(s) ~= "string" then
    error("bad argument #1 to 'crc32' (string expected, got " .. type(s) .. ")", 2)
  end
  local c = 0xFFFFFFFF
  for i = 1, #s do c = CRC[(c ~ byte(s, i)) & 255] ~ (c >> 8) end
  return c ~ 0xFFFFFFFF
end
ngx.crc32_short = crc32
ngx.crc32_long = crc32

-------------------------------------------------------------------------------
-- install
-------------------------------------------------------------------------------

-- table.clear(t): every key of t removed, the table kept (LuaJIT's).
function M.table_clear(t)
  if type(t) ~= "table" then
    error("bad argument #1 to 'table.clear' (table expected, got " .. type(t) .. ")", 2)
  end
  for k in next, t do t[k] = nil end
end

M.RESTY_PATH = "/usr/share/lua/5.1/nginx/?.lua;/usr/share/lua/5.1/?.lua"

-- A package searcher: "resty.X" from Debian's OpenResty drivers
-- (lua-nginx-redis installs resty.redis as nginx/redis.lua).
local function resty_searcher(name)
  local rest = name:match("^resty%.(.+)$")
  if not rest then return nil end
  local path = M.resty_path or M.RESTY_PATH
  local file, err = package.searchpath(rest, path)
  if not file then file = package.searchpath(name, path) end
  if not file then return "\n\tno OpenResty driver in " .. path .. ": " .. tostring(err) end
  local f, lerr = loadfile(file)
  if not f then error("error loading module '" .. name .. "' from " .. file .. ":\n\t" .. lerr, 2) end
  return f, file
end

--- install([opts]): make `ngx` and `unpack` globals and add a searcher
-- for `require "resty.X"` (opts.resty_path, a ;-separated template list;
-- false: no searcher). Returns the ngx table. Idempotent.
function M.install(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #1 to 'quench.ngx.install' (options table expected, got "
          .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "resty_path" and k ~= "log_level" and k ~= "ssl_trusted_certificate"
       and k ~= "timer_grace" then
      error("bad argument #1 to 'quench.ngx.install' (unknown option '" .. tostring(k) .. "')", 2)
    end
  end
  _G.ngx = ngx
  if _G.unpack == nil then _G.unpack = table.unpack end
  -- LuaJIT's table.new and table.clear, which OpenResty drivers require
  -- under pcall (table.new presizes the request tables resty.redis builds)
  if package.loaded["table.new"] == nil and package.preload["table.new"] == nil then
    package.preload["table.new"] = function() return C.new_tab end
  end
  if package.loaded["table.clear"] == nil and package.preload["table.clear"] == nil then
    package.preload["table.clear"] = function() return M.table_clear end
  end
  if opts.log_level ~= nil then M.log_level = opts.log_level end
  if opts.timer_grace ~= nil then
    local g = opts.timer_grace
    if type(g) ~= "number" or g < 0 or g ~= g then
      error("bad argument #1 to 'quench.ngx.install' (opts.timer_grace must be seconds >= 0, got "
            .. tostring(g) .. ")", 2)
    end
    M.timer_grace = g
  end
  if opts.ssl_trusted_certificate ~= nil then
    M.ssl_trusted_certificate = opts.ssl_trusted_certificate   -- lua_ssl_trusted_certificate
  end
  if opts.resty_path ~= false then
    if opts.resty_path ~= nil then M.resty_path = opts.resty_path end
    local present = false
    for _, s in ipairs(package.searchers) do
      if s == resty_searcher then present = true end
    end
    if not present then table.insert(package.searchers, resty_searcher) end
    add_nginx_searcher()
  end
  preload_luajit_modules()
  return ngx
end

M.Tcp, M.Udp = Tcp, Udp

return M
