-- module quench.socket
-- quench.socket: LuaSocket's API on quench, so that code written for
-- LuaSocket (socket.http, socket.smtp, ltn12 pipelines, redis-lua) runs on
-- quench tasks, each wait an await: it can be aborted, raced in a select
-- and bounded by quench.timeout, and a LuaSocket timeout is a quench
-- deadline. `quench.socket.require(name)` loads an unmodified
-- LuaSocket-based module with `socket` bound to this one (cosock's
-- asyncify).
--
-- Objects. tcp() makes a master; connect makes it a client, bind + listen
-- a server (bind listens at once, so getsockname knows the port and a
-- used address fails at bind, as LuaSocket reports it). A client reads
-- into its own buffer (self.buf) by read_some on the quench stream and
-- returns what a pattern asks from it: the bytes a dropped receive had
-- moved there stay for the next one, and the quench stream keeps the rest,
-- so no abort loses a byte. A send is one quench write: all or nothing.
--
-- Timeouts, as LuaSocket's: `settimeout(t, "b")` bounds each wait of a
-- call, `settimeout(t, "t")` the whole call (from its start); both: the
-- sooner. nil or negative: no bound. A call outside a quench task raises.
--
-- Embedded in quench.so (its first line makes luaopen_quench register it
-- in package.preload, compiled on first require), and installed as a file.
local quench = require "quench"
local pool = require "quench.pool"

local M = {
  _VERSION = "LuaSocket 3.0.0 (quench)",
  _SETSIZE = 1024,
  BLOCKSIZE = 2048,
}

local READ_MAX = 65536

---------------------------------------------------------------------------
-- errors

-- quench's codes, as LuaSocket names them (its socket_strerror).
local ERRORS = {
  ECONNREFUSED = "connection refused", EADDRINUSE = "address already in use",
  EACCES = "permission denied", EISCONN = "already connected",
  ECONNRESET = "closed", ECONNABORTED = "closed", EPIPE = "closed", ECANCELED = "closed",
  EOF = "closed", ETIMEDOUT = "timeout", EAFNOSUPPORT = "address family not supported",
  EADDRNOTAVAIL = "address not available", ENETUNREACH = "network is unreachable",
  EHOSTUNREACH = "host is unreachable", ENOENT = "no such file or directory",
  EAI_NONAME = "host not found", EAI_AGAIN = "temporary failure in name resolution",
  EAI_FAIL = "host not found", EAI_NODATA = "host not found",
  -- through quench.ssl: OpenSSL 3's reason, as LuaSec says it
  ETLS_TRUNCATED = "unexpected eof while reading",
}

local function lserr(msg, code)
  if code and ERRORS[code] then return ERRORS[code] end
  if type(msg) == "string" then return (msg:gsub("^[%w_]+: ", "")) end
  return tostring(msg)
end

local function in_task(fname)
  if quench.current() == nil then
    error(fname .. ": must be called inside a quench task (quench.run)", 3)
  end
end

---------------------------------------------------------------------------
-- timeouts

-- The bound of the next wait of a call that started at t0: nil (none),
-- or seconds (0 or more).
local function wait_limit(self, t0)
  local b, t = self.block, self.total
  if b == nil and t == nil then return nil end
  local left
  if t ~= nil then left = math.max(0, t - (quench.now() - t0)) end
  if b == nil then return left end
  if left == nil then return b end
  return math.min(b, left)
end

-- Await op (or fn) within limit: true, results... or false (timed out).
local function bounded(limit, op, ...)
  if limit == nil then
    if type(op) == "function" then return true, op(...) end
    return true, op:await()
  end
  local r = table.pack(quench.timeout(limit, op, ...))
  if r[1] then return table.unpack(r, 1, r.n) end
  return false
end

---------------------------------------------------------------------------
-- objects

local tcp_master = { __name = "tcp{master}" }
local tcp_client = { __name = "tcp{client}" }
local tcp_server = { __name = "tcp{server}" }
local unix_master = { __name = "unix{master}" }
local unix_client = { __name = "unix{client}" }
local unix_server = { __name = "unix{server}" }
local udp_unconnected = { __name = "udp{unconnected}" }
local unixdgram_unconnected = { __name = "unixdgram{unconnected}" }
local unixdgram_connected = { __name = "unixdgram{connected}" }
local udp_connected = { __name = "udp{connected}" }

-- quench.now(), or 0 outside a runtime (objects can be made there).
local function now()
  local ok, t = pcall(quench.now)
  return ok and t or 0
end

local function new(mt, fields)
  fields.stats = fields.stats or { recv = 0, sent = 0, birth = now() }
  fields.opts = fields.opts or {}
  return setmetatable(fields, mt)
end

local serial = 0
local function object(mt, fields)
  serial = serial + 1
  fields.id = ("%08x"):format(serial)
  return new(mt, fields)
end

-- Shared methods -----------------------------------------------------------

local common = {}

function common:settimeout(value, mode)
  if value ~= nil and type(value) ~= "number" then
    error("bad argument #1 to 'settimeout' (number expected, got " .. type(value) .. ")", 2)
  end
  if value ~= nil and value < 0 then value = nil end
  mode = mode or "b"
  if mode == "b" or mode == "r" then
    self.block = value
  elseif mode == "t" then
    self.total = value
  else
    error("bad argument #2 to 'settimeout' (invalid timeout mode)", 2)
  end
  return 1
end

function common:gettimeout()
  return self.block or -1, self.total or -1
end

function common:getstats()
  return self.stats.recv, self.stats.sent, now() - self.stats.birth
end

function common:setstats(received, sent, age)
  self.stats.recv = tonumber(received) or self.stats.recv
  self.stats.sent = tonumber(sent) or self.stats.sent
  if tonumber(age) then self.stats.birth = now() - tonumber(age) end
  return 1
end

-- getfd(): the descriptor of a connected client, a server (the listening
-- socket) or a UDP socket (still quench's: for getsockopt and the like,
-- never to read, write or close), else -1: a master (quench makes the
-- socket at connect or bind), a UDP object before its first use, a closed
-- object.
function common:getfd()
  if self.closed then return -1 end
  local h = self.stream or self.server or self.udp
  if h == nil then return -1 end
  return quench._fileno(h)
end

-- setfd: see master_methods:setfd; elsewhere it does nothing (quench will
-- not swap a live object's descriptor).
function common.setfd() end

function common:setoption(name, value)
  if type(name) ~= "string" then
    error("bad argument #1 to 'setoption' (string expected, got " .. type(name) .. ")", 2)
  end
  local known = { ["tcp-nodelay"] = true, keepalive = true, reuseaddr = true,
                  reuseport = true, linger = true, ["ipv6-v6only"] = true,
                  broadcast = true, dontroute = true }
  if not known[name] then error("unsupported option '" .. name .. "'", 2) end
  if name == "linger" and type(value) ~= "table" then
    error("bad argument #2 to 'setoption' (table expected for linger)", 2)
  end
  self.opts[name] = value
  local s = self.stream
  if s and s.nodelay then
    if name == "tcp-nodelay" then s:nodelay(value and true or false)
    elseif name == "keepalive" then s:keepalive(value and true or false) end
  end
  return 1
end

function common:getoption(name)
  local v = self.opts[name]
  if name == "linger" then return v or { on = false, timeout = 0 } end
  return v or false
end

function common:dirty()
  if self.buf ~= nil and #self.buf > 0 then return true end
  local s = self.stream
  return s ~= nil and not self.closed and s:buffered() > 0
end

-- Streams (clients) --------------------------------------------------------

local stream_methods = {}

-- Move what the stream has into self.buf, waiting at most limit:
-- true, or nil, "timeout" | "closed" | message.
local function fill(self, t0)
  if self.eof then return nil, self.eof end
  self.busy = true   -- left set by a dropped wait: the connection is never pooled
  local ok, data, msg, code = bounded(wait_limit(self, t0), self.stream:read_some_op(READ_MAX))
  self.busy = false
  if not ok then self.tainted = true; return nil, "timeout" end
  if data == nil then
    self.eof = msg == nil and "closed" or lserr(msg, code)
    return nil, self.eof
  end
  self.stats.recv = self.stats.recv + #data
  self.buf = self.buf .. data
  return true
end

-- Take n bytes from the front of self.buf.
local function take(self, n)
  local s = self.buf:sub(1, n)
  self.buf = self.buf:sub(n + 1)
  return s
end

-- receive([pattern [, prefix]]): data, or nil, err, partial.
function stream_methods:receive(pattern, prefix)
  in_task("receive")
  if self.closed then return nil, "closed" end
  local t0 = quench.now()
  pattern = pattern or "*l"
  prefix = prefix or ""
  if type(pattern) == "number" or (type(pattern) == "string" and pattern:match("^%d+$")) then
    local n = math.tointeger(tonumber(pattern))
    if n == nil or n < 0 then error("bad argument #1 to 'receive' (invalid pattern)", 2) end
    while #self.buf < n do
      local ok, err = fill(self, t0)
      if not ok then return nil, err, prefix .. take(self, #self.buf) end
    end
    return prefix .. take(self, n)
  end
  if type(pattern) ~= "string" then
    error("bad argument #1 to 'receive' (invalid receive pattern)", 2)
  end
  local p = pattern:gsub("^%*", "")
  if p == "l" then
    local from = 1
    while true do
      local e = self.buf:find("\n", from, true)
      if e then
        local line = take(self, e):sub(1, -2):gsub("\r", "")
        return prefix .. line
      end
      from = #self.buf + 1
      local ok, err = fill(self, t0)
      if not ok then return nil, err, prefix .. (take(self, #self.buf):gsub("\r", "")) end
    end
  elseif p == "a" then
    local got = #self.buf > 0
    while true do
      local ok, err = fill(self, t0)
      got = got or ok
      if not ok then
        -- as LuaSocket's: data until closed, but "closed" if there was none
        if err == "closed" and got then return prefix .. take(self, #self.buf) end
        return nil, err, prefix .. take(self, #self.buf)
      end
    end
  end
  error("bad argument #1 to 'receive' (invalid receive pattern)", 2)
end

-- send(data [, i [, j]]): the index of the last byte sent, or nil, err,
-- the index of the last byte sent before the error.
function stream_methods:send(data, i, j)
  in_task("send")
  if type(data) == "number" then data = tostring(data) end
  if type(data) ~= "string" then
    error("bad argument #1 to 'send' (string expected, got " .. type(data) .. ")", 2)
  end
  local len = #data
  i = math.tointeger(i or 1) or error("bad argument #2 to 'send' (integer expected)", 2)
  j = math.tointeger(j or -1) or error("bad argument #3 to 'send' (integer expected)", 2)
  if i < 0 then i = math.max(len + i + 1, 1) elseif i == 0 then i = 1 end
  if j < 0 then j = len + j + 1 elseif j > len then j = len end
  if self.closed then return nil, "closed", i - 1 end
  if i > j then return i - 1 end
  local chunk = data:sub(i, j)
  self.busy = true
  local ok, s, msg, code = bounded(wait_limit(self, quench.now()), self.stream:write_op(chunk))
  self.busy = false
  if not ok then self.tainted = true; return nil, "timeout", i - 1 end
  if s == nil then return nil, lserr(msg, code), i - 1 end
  self.stats.sent = self.stats.sent + #chunk
  return j
end

function stream_methods:shutdown(how)
  how = how or "both"
  if how ~= "both" and how ~= "send" and how ~= "receive" then
    error("bad argument #1 to 'shutdown' (invalid shutdown method)", 2)
  end
  if self.closed then return nil, "closed" end
  if how ~= "receive" and not self.shut then
    in_task("shutdown")
    self.shut = true
    local ok, r, msg, code = bounded(wait_limit(self, quench.now()), self.stream:shutdown_op())
    if not ok then return nil, "timeout" end
    if r == nil then return nil, lserr(msg, code) end
  end
  return 1
end

local function addr_results(host, port)
  if host == nil then return nil, lserr(port) end
  if type(port) ~= "number" then return host end   -- a Unix name
  return host, math.tointeger(port) or port, host:find(":", 1, true) and "inet6" or "inet"
end

function stream_methods:getpeername()
  if self.closed then return nil, "closed" end
  return addr_results(self.stream:getpeername())
end

function stream_methods:getsockname()
  if self.closed then return nil, "closed" end
  return addr_results(self.stream:getsockname())
end

function stream_methods:close()
  if not self.closed then
    self.closed = true
    local linger = self.opts.linger
    if linger and linger.on and (linger.timeout or 0) == 0 and self.stream.close_reset then
      self.stream:close_reset()
    else
      self.stream:close()
    end
  end
  return 1
end

-- setkeepalive([idle [, size]]): a quench extension (OpenResty's idiom,
-- in seconds): the connection goes to quench.pool for the next connect to
-- the same destination, and the object is closed. Refused (the connection
-- is closed, nil, err) when it has unread data, reached EOF or an error,
-- was shut down, or a call on it timed out or was dropped.
function stream_methods:setkeepalive(idle, size)
  if idle ~= nil and (type(idle) ~= "number" or idle < 0 or idle ~= idle) then
    error("bad argument #1 to 'setkeepalive' (seconds >= 0 expected, got " .. tostring(idle) .. ")", 2)
  end
  if size ~= nil and (math.type(size) ~= "integer" or size < 1) then
    error("bad argument #2 to 'setkeepalive' (pool size must be a positive integer, got "
          .. tostring(size) .. ")", 2)
  end
  if self.closed then return nil, "closed" end
  local dubious
  if #self.buf > 0 then dubious = "unread data in buffer"
  elseif self.eof or self.shut then dubious = "closed"
  elseif self.busy or self.tainted then dubious = "connection in dubious state"
  end
  local stream, key = self.stream, self.pool_key
  self.closed = true
  if dubious or key == nil then
    stream:close()
    return nil, dubious or "connection not pooled (accepted, or from a chosen local address)"
  end
  local ok, err = pool.give(key, stream, { idle = idle or pool.DEFAULT_IDLE, size = size,
                                           reused = self.reused or 0 })
  if ok then return 1 end
  return nil, err
end

-- getreusedtimes(): how many times this connection came from the pool.
function stream_methods:getreusedtimes()
  if self.closed then return nil, "closed" end
  return self.reused or 0
end

-- Masters ----------------------------------------------------------------

local master_methods = {}

local function client_from(self, stream, mt)
  setmetatable(self, mt)
  self.stream = stream
  self.buf = ""
  if stream.nodelay then
    if self.opts["tcp-nodelay"] then stream:nodelay(true) end
    if self.opts.keepalive then stream:keepalive(true) end
  end
  return 1
end

function master_methods:connect(host, port)
  in_task("connect")
  if self.closed then return nil, "closed" end
  local copts
  if self.server then
    if self.unix then return nil, "already bound" end
    -- bind before connect: the connection leaves from the bound address.
    -- bind listened there (see bind); the listener goes, its address stays
    local lhost, lport = self.server:getsockname()
    self.server:close()
    self.server = nil
    copts = { local_host = lhost, local_port = lport }
  end
  local ok, s, msg, code
  if type(host) ~= "string" then
    error("bad argument #1 to 'connect' (string expected, got " .. type(host) .. ")", 2)
  end
  local key
  if self.unix then
    key = "unix:" .. host
  else
    port = math.tointeger(tonumber(port))
    if port == nil or port < 0 or port > 65535 then
      error("bad argument #2 to 'connect' (port expected)", 2)
    end
    if host == "*" then host = "0.0.0.0" end
    key = pool.key(host, port)
  end
  -- a connection kept alive with setkeepalive (here or by quench.ngx) first,
  -- unless it must leave from a given local address
  local reused
  if copts == nil then s, reused = pool.take(key) end
  if s then
    client_from(self, s, self.unix and unix_client or tcp_client)
    self.pool_key, self.reused = key, reused
    return 1
  end
  if self.unix then
    s, msg, code = quench.unix.connect(host)
    ok = true
  else
    ok, s, msg, code = bounded(wait_limit(self, quench.now()),
                               quench.tcp.connect_op(host, port, copts))
  end
  if not ok then return nil, "timeout" end
  if s == nil then return nil, lserr(msg, code) end
  if copts == nil then self.pool_key = key end   -- one from a chosen address is not pooled
  return client_from(self, s, self.unix and unix_client or tcp_client)
end

function master_methods:bind(host, port)
  if self.closed then return nil, "closed" end
  if self.server then return nil, "already bound" end
  local srv, msg, code
  if self.unix then
    if type(host) ~= "string" then
      error("bad argument #1 to 'bind' (string expected, got " .. type(host) .. ")", 2)
    end
    srv, msg, code = quench.unix.listen(host, { backlog = 32 })
  else
    port = math.tointeger(tonumber(port))
    if port == nil or port < 0 or port > 65535 then
      error("bad argument #2 to 'bind' (port expected)", 2)
    end
    if host == "*" then host = "0.0.0.0" end
    srv, msg, code = quench.tcp.listen(host, port, {
      backlog = 32, reuseaddr = self.opts.reuseaddr and true or false,
      reuseport = self.opts.reuseport and true or false,
      nodelay = self.opts["tcp-nodelay"] and true or nil,
    })
  end
  if srv == nil then return nil, lserr(msg, code) end
  self.server = srv
  return 1
end

-- setfd(fd) on a master (an object with no descriptor yet): quench.adopt(fd),
-- so the object becomes the client (a connected socket) or the server (a
-- listening one) of that descriptor, which quench then owns.
function master_methods:setfd(fd)
  if math.type(fd) ~= "integer" then
    error("bad argument #1 to 'setfd' (integer expected, got " .. type(fd) .. ")", 2)
  end
  if self.closed or self.server then return end
  local obj, msg = quench.adopt(fd, { nodelay = self.opts["tcp-nodelay"] and true or nil })
  if obj == nil then return nil, msg end
  local unix = (getmetatable(obj).__name or ""):match("^quench%.unix") ~= nil
  self.unix = unix or nil
  if obj.accept then
    self.server = obj
    setmetatable(self, unix and unix_server or tcp_server)
    self.pending = {}
  else
    client_from(self, obj, unix and unix_client or tcp_client)
  end
  return 1
end

-- listen([backlog]): the backlog was set at bind (quench listens there).
function master_methods:listen()
  if self.closed then return nil, "closed" end
  if not self.server then return nil, "not bound" end
  setmetatable(self, self.unix and unix_server or tcp_server)
  self.pending = {}
  return 1
end

function master_methods:getsockname()
  if self.closed then return nil, "closed" end
  if not self.server then
    if self.unix then return "" end
    return "0.0.0.0", 0, "inet"
  end
  return addr_results(self.server:getsockname())
end

function master_methods.getpeername() return nil, "not connected" end

function master_methods:close()
  if not self.closed then
    self.closed = true
    if self.server then self.server:close() end
  end
  return 1
end

-- Servers ------------------------------------------------------------------

local server_methods = {}

function server_methods:accept()
  in_task("accept")
  if self.closed then return nil, "closed" end
  local s = table.remove(self.pending, 1)
  if s == nil then
    local ok, msg, code
    ok, s, msg, code = bounded(wait_limit(self, quench.now()), self.server:accept_op())
    if not ok then return nil, "timeout" end
    if s == nil then return nil, lserr(msg, code) end
  end
  local c = object(self.unix and unix_master or tcp_master, { unix = self.unix })
  client_from(c, s, self.unix and unix_client or tcp_client)
  return c
end

server_methods.getsockname = master_methods.getsockname
server_methods.close = master_methods.close
function server_methods.getpeername() return nil, "not connected" end
function server_methods:dirty() return #self.pending > 0 end

---------------------------------------------------------------------------
-- UDP

local udp_methods = {}

local function udp_ensure(self)
  if self.udp then return self.udp end
  local u, msg, code = quench.udp.bind(self.family == "inet6" and "::" or "0.0.0.0", 0)
  if u == nil then return nil, lserr(msg, code) end
  self.udp = u
  return u
end

function udp_methods:setsockname(host, port)
  if self.closed then return nil, "closed" end
  if self.udp then return nil, "already bound" end
  if host == "*" then host = self.family == "inet6" and "::" or "0.0.0.0" end
  port = math.tointeger(tonumber(port))
  if port == nil then error("bad argument #2 to 'setsockname' (port expected)", 2) end
  local u, msg, code = quench.udp.bind(host, port,
                                       { reuseaddr = self.opts.reuseaddr and true or nil })
  if u == nil then return nil, lserr(msg, code) end
  self.udp = u
  return 1
end

function udp_methods:setpeername(host, port)
  if self.closed then return nil, "closed" end
  if host == "*" then
    self.peer = nil
    setmetatable(self, udp_unconnected)
    return 1
  end
  port = math.tointeger(tonumber(port))
  if type(host) ~= "string" or port == nil then
    error("bad argument to 'setpeername' (host and port expected)", 2)
  end
  local ok, err = udp_ensure(self)
  if not ok then return nil, err end
  self.peer = { host, port }
  setmetatable(self, udp_connected)
  return 1
end

local function udp_send(self, data, host, port)
  in_task("sendto")
  if self.closed then return nil, "closed" end
  local u, err = udp_ensure(self)
  if not u then return nil, err end
  local ok, r, msg, code = bounded(wait_limit(self, quench.now()), u:send_op(data, host, port))
  if not ok then return nil, "timeout" end
  if r == nil then return nil, lserr(msg, code) end
  self.stats.sent = self.stats.sent + #data
  return #data
end

function udp_methods:send(data)
  if not self.peer then error("'send' needs a connected udp object (setpeername)", 2) end
  return udp_send(self, data, self.peer[1], self.peer[2])
end

function udp_methods:sendto(data, host, port)
  port = math.tointeger(tonumber(port))
  if type(host) ~= "string" or port == nil then
    error("bad argument to 'sendto' (ip and port expected)", 2)
  end
  return udp_send(self, data, host, port)
end

local function udp_recv(self, size)
  in_task("receive")
  if self.closed then return nil, "closed" end
  local u, err = udp_ensure(self)
  if not u then return nil, err end
  local t0 = quench.now()
  while true do
    local ok, data, host, port = bounded(wait_limit(self, t0), u:recv_op(size or 8192))
    if not ok then return nil, "timeout" end
    if data == nil then return nil, lserr(host, port) end
    local peer = self.peer
    -- a connected socket hears its peer only (the kernel would filter)
    if not peer or (port == peer[2] and (host == peer[1] or peer[1] == "localhost")) then
      self.stats.recv = self.stats.recv + #data
      return data, host, port
    end
  end
end

function udp_methods:receive(size)
  local data, err = udp_recv(self, size)
  if data == nil then return nil, err end
  return data
end

function udp_methods:receivefrom(size)
  return udp_recv(self, size)
end

function udp_methods:getsockname()
  if self.closed then return nil, "closed" end
  if not self.udp then return nil, "not bound" end
  return addr_results(self.udp:getsockname())
end

function udp_methods:getpeername()
  if not self.peer then return nil, "not connected" end
  return self.peer[1], self.peer[2], self.family
end

function udp_methods:close()
  if not self.closed then
    self.closed = true
    if self.udp then self.udp:close() end
  end
  return 1
end

---------------------------------------------------------------------------
-- Unix datagrams (LuaSocket 3's socket.unix.dgram, alias udp), on
-- quench.unix.dgram. Names: a path, or "@name" (Linux's abstract names).

local unixdgram_methods = {}

local UNIXDGRAM_SIZE = 8192   -- LuaSocket's UNIXDGRAM_DATAGRAMSIZE

local function check_path(fname, path)
  if type(path) ~= "string" then
    error("bad argument #1 to '" .. fname .. "' (string expected, got " .. type(path) .. ")", 3)
  end
end

local function ud_ensure(self)
  if self.ud then return self.ud end
  local u, msg, code = quench.unix.dgram()
  if u == nil then return nil, lserr(msg, code) end
  self.ud = u
  return u
end

function unixdgram_methods:bind(path)
  check_path("bind", path)
  if self.closed then return nil, "closed" end
  local ok, msg, code
  if self.ud then
    ok, msg, code = self.ud:bind(path)
  else
    ok, msg, code = quench.unix.dgram(path)
    if ok then self.ud = ok end
  end
  if not ok then return nil, lserr(msg, code) end
  return 1
end
unixdgram_methods.setsockname = unixdgram_methods.bind

function unixdgram_methods:connect(path)
  check_path("connect", path)
  if self.closed then return nil, "closed" end
  local u, err = ud_ensure(self)
  if not u then return nil, err end
  local ok, msg, code = u:connect(path)
  if not ok then return nil, lserr(msg, code) end
  self.peer = path
  setmetatable(self, unixdgram_connected)
  return 1
end
unixdgram_methods.setpeername = unixdgram_methods.connect

local function ud_send(self, fname, data, path)
  if type(data) ~= "string" then
    error("bad argument #1 to '" .. fname .. "' (string expected, got " .. type(data) .. ")", 3)
  end
  in_task(fname)
  if self.closed then return nil, "closed" end
  local u, err = ud_ensure(self)
  if not u then return nil, err end
  local ok, r, msg, code = bounded(wait_limit(self, quench.now()), u:send_op(data, path))
  if not ok then return nil, "timeout" end
  if r == nil then return nil, lserr(msg, code) end
  self.stats.sent = self.stats.sent + #data
  return #data
end

function unixdgram_methods:send(data)
  if not self.peer then error("'send' needs a connected unix dgram object (connect)", 2) end
  return ud_send(self, "send", data, nil)
end

function unixdgram_methods:sendto(data, path)
  check_path("sendto", path)
  return ud_send(self, "sendto", data, path)
end

local function ud_recv(self, fname, size)
  if size ~= nil and (math.tointeger(size) == nil or size < 1) then
    error("bad argument #1 to '" .. fname .. "' (positive integer expected)", 3)
  end
  in_task(fname)
  if self.closed then return nil, "closed" end
  local u, err = ud_ensure(self)
  if not u then return nil, err end
  local ok, data, from, code = bounded(wait_limit(self, quench.now()),
                                       u:recv_op(size or UNIXDGRAM_SIZE))
  if not ok then return nil, "timeout" end
  if data == nil then return nil, lserr(from, code) end
  self.stats.recv = self.stats.recv + #data
  return data, from
end

function unixdgram_methods:receive(size)
  local data, err = ud_recv(self, "receive", size)
  if data == nil then return nil, err end
  return data
end

function unixdgram_methods:receivefrom(size)
  return ud_recv(self, "receivefrom", size)
end

function unixdgram_methods:getsockname()
  if self.closed then return nil, "closed" end
  if not self.ud then return "" end
  local name, msg, code = self.ud:getsockname()
  if name == nil then return nil, lserr(msg, code) end
  return name
end

function unixdgram_methods:getpeername()
  if not self.peer then return nil, "not connected" end
  return self.peer
end

function unixdgram_methods:getfd()
  if self.closed or self.ud == nil then return -1 end
  return quench._fileno(self.ud)
end

function unixdgram_methods.dirty() return false end

function unixdgram_methods:close()
  if not self.closed then
    self.closed = true
    if self.ud then self.ud:close() end
  end
  return 1
end

---------------------------------------------------------------------------
-- metatables

local function class(mt, ...)
  local index = {}
  for _, t in ipairs { common, ... } do
    for k, v in pairs(t) do index[k] = v end
  end
  mt.__index = index
  mt.__tostring = function(self) return mt.__name .. ": " .. self.id end
  mt.__close = function(self) self:close() end
  return mt
end
class(tcp_master, master_methods)
class(tcp_client, stream_methods)
class(tcp_server, server_methods)
class(unix_master, master_methods)
class(unix_client, stream_methods)
class(unix_server, server_methods)
class(udp_unconnected, udp_methods)
class(udp_connected, udp_methods)
class(unixdgram_unconnected, unixdgram_methods)
class(unixdgram_connected, unixdgram_methods)

---------------------------------------------------------------------------
-- the module

function M.tcp() return object(tcp_master, {}) end
function M.tcp4() return object(tcp_master, { family = "inet" }) end
function M.tcp6() return object(tcp_master, { family = "inet6" }) end
function M.udp() return object(udp_unconnected, { family = "inet" }) end
function M.udp4() return object(udp_unconnected, { family = "inet" }) end
function M.udp6() return object(udp_unconnected, { family = "inet6" }) end

-- socket.unix: a table (stream, the default when called) as LuaSocket's.
M.unix = setmetatable({
  stream = function() return object(unix_master, { unix = true }) end,
  dgram = function() return object(unixdgram_unconnected, {}) end,
}, { __call = function(t) return t.stream() end })
-- LuaSocket 3's backwards-compatible names: unix.tcp is stream, unix.udp dgram
M.unix.tcp, M.unix.udp = M.unix.stream, M.unix.dgram

function M.connect(host, port, locaddr, locport, family)
  local c = (family == "inet6" and M.tcp6 or M.tcp)()
  if locaddr ~= nil or locport ~= nil then   -- leave from locaddr:locport (0: any port)
    local ok, err = c:bind(locaddr or (family == "inet6" and "::" or "0.0.0.0"), locport or 0)
    if not ok then
      c:close()
      return nil, err
    end
  end
  local ok, err = c:connect(host, port)
  if not ok then
    c:close()
    return nil, err
  end
  return c
end
function M.connect4(host, port) return M.connect(host, port, nil, nil, "inet") end
function M.connect6(host, port) return M.connect(host, port, nil, nil, "inet6") end

function M.bind(host, port, backlog)
  local s = M.tcp()
  s:setoption("reuseaddr", true)
  local ok, err = s:bind(host, port)
  if ok then ok, err = s:listen(backlog) end
  if not ok then
    s:close()
    return nil, err
  end
  return s
end

-- gettime: epoch seconds on quench's clock: os.time() at a runtime's
-- first call, moving with quench.now() from there (a virtual clock moves
-- it too), so durations measured with it agree with quench's timeouts. A
-- new runtime (its clock starts again at 0) takes a new anchor.
local anchor, last = nil, math.huge
function M.gettime()
  local ok, t = pcall(quench.now)
  if not ok then return os.time() end
  if anchor == nil or t < last then anchor = os.time() - t end
  last = t
  return anchor + t
end

-- sleep(t): waits as quench.sleep (never blocks the runtime).
function M.sleep(t)
  in_task("sleep")
  if type(t) ~= "number" then
    error("bad argument #1 to 'sleep' (number expected, got " .. type(t) .. ")", 2)
  end
  if t > 0 then quench.sleep(t) else quench.yield() end
end

function M.skip(d, ...)
  return select(d + 1, ...)
end

-- select(recvt, sendt [, timeout]): the readable and writable objects,
-- each a list that also maps object -> index; "timeout" if none.
function M.select(recvt, sendt, timeout)
  in_task("select")
  local rr, ww = {}, {}
  local function add(t, o)
    if t[o] then return end
    t[#t + 1] = o
    t[o] = #t
  end
  local waiters = {}
  for _, o in ipairs(recvt or {}) do
    if type(o) == "table" and not o.closed then
      if o:dirty() then
        add(rr, o)
      elseif o.stream or (o.server and o.pending) then
        waiters[#waiters + 1] = o
      end
    end
  end
  for _, o in ipairs(sendt or {}) do
    if type(o) == "table" and not o.closed and (o.stream or o.udp or o.peer) then add(ww, o) end
  end
  if #rr > 0 or #ww > 0 then return rr, ww end
  local branches = {}
  for k, o in ipairs(waiters) do
    branches[k] = function()
      if o.stream then
        local data = o.stream:read_some(READ_MAX)
        if data then
          o.stats.recv = o.stats.recv + #data
          o.buf = o.buf .. data
        else
          o.eof = o.eof or "closed"
        end
      else
        local s = o.server:accept()
        if s then o.pending[#o.pending + 1] = s end
      end
      return o
    end
  end
  if timeout ~= nil and timeout >= 0 then branches[#branches + 1] = quench.sleep_op(timeout) end
  if #branches == 0 then return rr, ww, "timeout" end
  local r = table.pack(quench.select(table.unpack(branches)))
  if r[1] > #waiters then return rr, ww, "timeout" end
  add(rr, r[2])
  for _, o in ipairs(waiters) do
    if o.stream and o.stream:buffered() > 0 then add(rr, o) end
  end
  return rr, ww
end

---------------------------------------------------------------------------
-- try, newtry, protect: errors as values, coroutine-safe (a quench task is
-- a coroutine; pcall yields across in 5.4)

local Failure = { __name = "quench.socket.failure" }
Failure.__tostring = function(e) return tostring(e[1]) end

function M.newtry(finalizer)
  return function(...)
    local ok = ...
    if ok then return ... end
    if finalizer then pcall(finalizer) end
    error(setmetatable({ (select(2, ...)) }, Failure), 0)
  end
end
M.try = M.newtry()

function M.protect(f)
  return function(...)
    local r = table.pack(pcall(f, ...))
    if r[1] then return table.unpack(r, 2, r.n) end
    local e = r[2]
    if getmetatable(e) == Failure then return nil, e[1] end
    error(e, 0)
  end
end

---------------------------------------------------------------------------
-- sources and sinks (LuaSocket's socket.lua, for LTN12)

function M.choose(t)
  return function(name, opt1, opt2)
    if type(name) ~= "string" then name, opt1, opt2 = "default", name, opt1 end
    local f = t[name or "nil"]
    if not f then error("unknown key (" .. tostring(name) .. ")", 3) end
    return f(opt1, opt2)
  end
end

local sourcet, sinkt = {}, {}
M.sourcet, M.sinkt = sourcet, sinkt

local function wrap(sock, call)
  return setmetatable({
    getfd = function() return sock:getfd() end,
    dirty = function() return sock:dirty() end,
  }, { __call = call })
end

sinkt["close-when-done"] = function(sock)
  return wrap(sock, function(_, chunk)
    if not chunk then
      sock:close()
      return 1
    end
    return sock:send(chunk)
  end)
end
sinkt["keep-open"] = function(sock)
  return wrap(sock, function(_, chunk)
    if chunk then return sock:send(chunk) end
    return 1
  end)
end
sinkt.default = sinkt["keep-open"]
M.sink = M.choose(sinkt)

sourcet["by-length"] = function(sock, length)
  return wrap(sock, function()
    if length <= 0 then return nil end
    local chunk, err = sock:receive(math.min(M.BLOCKSIZE, length))
    if err then return nil, err end
    length = length - #chunk
    return chunk
  end)
end
sourcet["until-closed"] = function(sock)
  local done
  return wrap(sock, function()
    if done then return nil end
    local chunk, err, partial = sock:receive(M.BLOCKSIZE)
    if not err then return chunk end
    if err == "closed" then
      sock:close()
      done = true
      return partial
    end
    return nil, err
  end)
end
sourcet.default = sourcet["until-closed"]
M.source = M.choose(sourcet)

---------------------------------------------------------------------------
-- dns

M.dns = {}

function M.dns.getaddrinfo(host)
  in_task("getaddrinfo")
  local list, msg, code = quench.dns.getaddrinfo(host)
  if not list then return nil, lserr(msg, code) end
  local out, seen = {}, {}
  for _, a in ipairs(list) do
    if not seen[a.addr] then
      seen[a.addr] = true
      out[#out + 1] = { family = a.family, addr = a.addr }
    end
  end
  return out
end

function M.dns.toip(host)
  local list, err = M.dns.getaddrinfo(host)
  if not list then return nil, err end
  for _, a in ipairs(list) do
    if a.family == "inet" then
      return a.addr, { name = host, alias = {}, ip = { a.addr } }
    end
  end
  return list[1].addr, { name = host, alias = {}, ip = { list[1].addr } }
end

function M.dns.gethostname()
  local f = io.open("/proc/sys/kernel/hostname")
  if not f then return nil, "unknown host name" end
  local name = f:read("l")
  f:close()
  return name
end

---------------------------------------------------------------------------
-- the loader

-- What the loaded modules' require gives: these names are quench's.
local MAPPED = {
  socket = M, ["socket.core"] = M, ["socket.unix"] = M.unix,
}
local loaded = {}     -- modules loaded with socket bound to this one, by name
-- the same for each opts.globals table (a module loaded with other globals
-- is another module)
local loaded_with = setmetatable({}, { __mode = "k" })

-- quench.socket.require(name [, opts]): load `name` (and, through it,
-- every "socket.*" module it requires) from its unmodified file with
-- `require "socket"` giving quench.socket. opts.path: more places to
-- look (a package.path template), e.g. Debian's Lua 5.1-5.3 modules;
-- opts.async: a list of other module names to load the same way;
-- opts.globals: names the modules' environment gives instead of _G's.
function M.require(name, opts)
  if type(name) ~= "string" then
    error("bad argument #1 to 'quench.socket.require' (string expected, got "
          .. type(name) .. ")", 2)
  end
  opts = opts or {}
  local path = package.path
  if opts.path then path = path .. ";" .. opts.path end
  local own = { [name] = true }
  for _, n in ipairs(opts.async or {}) do own[n] = true end
  local globals = opts.globals
  if globals ~= nil and type(globals) ~= "table" then
    error("bad argument #2 to 'quench.socket.require' (opts.globals must be a table, got "
          .. type(globals) .. ")", 2)
  end
  local cache = loaded
  if globals then
    cache = loaded_with[globals]
    if cache == nil then cache = {}; loaded_with[globals] = cache end
  end

  local function req(n)
    if MAPPED[n] then return MAPPED[n] end
    if n == "ssl" or n:match("^ssl%.") then
      -- LuaSec's API on quench.tls (quench.ssl); its own ssl.https, the
      -- file, loads through here like a socket.* module
      local ssl = require "quench.ssl"
      if n ~= "ssl.https" then return ssl.module(n) end
      own[n] = true
    end
    if cache[n] ~= nil then return cache[n] end
    if not (own[n] or n:match("^socket%.")) then return require(n) end
    local file, err = package.searchpath(n, path)
    if not file then
      error("quench.socket.require: module '" .. n .. "' not found:" .. err, 3)
    end
    local env = setmetatable({ require = req }, { __index = _G })
    if globals then
      for k, v in pairs(globals) do
        if k ~= "require" then env[k] = v end
      end
    end
    local chunk = assert(loadfile(file, "t", env))
    local r = chunk(n, file)
    if r == nil then r = true end
    cache[n] = r
    return r
  end
  return req(name)
end

-- For quench.ssl (LuaSec on quench.tls): the methods of a client object
-- and the helpers they use, so an SSL object can share them.
M._internal = {
  common = common, stream_methods = stream_methods, lserr = lserr,
  wait_limit = wait_limit, bounded = bounded, in_task = in_task,
}

return M
