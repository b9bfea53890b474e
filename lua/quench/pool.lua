-- module quench.pool
-- quench.pool: idle connections kept for reuse, keyed by where they lead
-- (host and port, or a Unix socket's path, and the TLS parameters), for
-- the OpenResty facade (quench.ngx) and the LuaSocket facade
-- (quench.socket). Guide: docs/io.md, "Connection pool".
--
-- State: `pools[key]` is a list of idle entries, oldest first; an entry is
-- { stream =, expires = (quench.now() seconds, or math.huge), reused =
-- (times handed out before), data = (the caller's, e.g. TLS state) }.
-- Invariant: an entry's stream was idle when it was put in (nothing
-- unread, no read or write of a caller in flight) and nobody else holds it;
-- it is closed whenever it leaves the pool other than by `take`.
--
-- Cancel safety by construction: only the caller who finished a request
-- puts a connection back (`give`), and `give` refuses one with bytes
-- unread, one the peer wrote to or closed meanwhile, or one the caller
-- marks dubious; `take` checks again (the peer may have closed it while it
-- was idle) and never waits. So an aborted or timed-out request's
-- connection is closed, never handed to the next user.
-- Embedded in quench.so (its first line makes luaopen_quench register it
-- in package.preload, compiled on first require), and installed as a file.
local quench = require "quench"

local now, select_biased, sleep_op = quench.now, quench.select_biased, quench.sleep_op
local huge, type, pcall, tostring = math.huge, type, pcall, tostring

local M = {}

-- Defaults: OpenResty's lua_socket_keepalive_timeout and lua_socket_pool_size.
M.DEFAULT_IDLE = 60
M.DEFAULT_SIZE = 30

local pools = {}        -- key -> list of entries, oldest first
local last_sweep = -huge

local function close(stream)
  pcall(stream.close, stream)   -- a stream of an ended runtime: close does nothing
end

-- Whether an idle stream can be used: open, in this runtime, nothing
-- buffered, and no data, EOF or error waiting (a read would not wait).
-- Never waits: a read that is ready wins the biased select at once, else
-- the zero sleep does and the read is dropped (nothing read).
local quiet = quench._ngx.quiet   -- the same answer for quench's streams, in one C call

local function idle_ok(stream)
  local q = quiet(stream)
  if q ~= nil then return q end
  local ok, buffered = pcall(stream.buffered, stream)
  if not ok or buffered ~= 0 then return false end
  if stream.read_some_op == nil then return true end
  local ok2, i = pcall(select_biased, stream:read_some_op(1), sleep_op(0))
  return ok2 and i == 2
end

--- The key of a destination: `"host:port"`, `"unix:/path"`, with the TLS
-- parameters appended when `tls` is a table (`server_name`, `verify`, and
-- any other string, number or boolean fields, in sorted order).
function M.key(host, port, tls)
  if type(host) ~= "string" then
    error("quench.pool.key: bad argument #1 (host or unix:path string expected, got "
          .. type(host) .. ")", 2)
  end
  local k = port ~= nil and (host .. ":" .. tostring(port)) or host
  if type(tls) == "table" then
    local names = {}
    for name, v in pairs(tls) do
      local tv = type(v)
      if type(name) == "string" and (tv == "string" or tv == "number" or tv == "boolean") then
        names[#names + 1] = name
      end
    end
    table.sort(names)
    local parts = { k, "tls" }
    for _, name in ipairs(names) do parts[#parts + 1] = name .. "=" .. tostring(tls[name]) end
    k = table.concat(parts, "|")
  elseif tls then
    k = k .. "|tls"
  end
  return k
end

-- Close the expired entries of one list; returns how many are left.
local function sweep_list(key, list, t)
  local j = 0
  for i = 1, #list do
    local e = list[i]
    list[i] = nil
    if e.expires <= t then close(e.stream) else j = j + 1; list[j] = e end
  end
  if j == 0 then pools[key] = nil end
  return j
end

-- At most once a second (on the runtime's clock), close the expired
-- entries of every key, so a key nobody asks for again frees its sockets.
local function sweep_all(t)
  if t - last_sweep < 1 and t >= last_sweep then return end
  last_sweep = t
  for key, list in pairs(pools) do sweep_list(key, list, t) end
end

-- Why an idle stream cannot be pooled, or nil if it can.
local function refusal(stream)
  local ok, buffered = pcall(stream.buffered, stream)
  if not ok then return "closed" end
  if buffered ~= 0 then return "unread data in buffer" end
  if not idle_ok(stream) then return "connection in dubious state" end
  return nil
end

-- Keep an idle stream for key, closing the oldest past size.
local function store(key, stream, idle, size, reused, data)
  local t = now()
  sweep_all(t)
  local list = pools[key]
  if list == nil then list = {}; pools[key] = list end
  while #list >= size do   -- full: the oldest goes
    close(table.remove(list, 1).stream)
  end
  list[#list + 1] = {
    stream = stream, expires = idle == 0 and huge or t + idle, reused = reused, data = data,
  }
  return true
end

--- Take the most recently idle connection for `key`, or `nil` if there is
-- none. Never waits. Returns `stream, reused, data`: `reused` is how many
-- times it was taken before this one (1 the first time it comes back).
-- Expired connections, and ones the peer closed or wrote to while idle,
-- are closed and skipped.
function M.take(key)
  local list = pools[key]
  if list == nil then return nil end
  local t = now()
  while true do
    local n = #list
    if n == 0 then pools[key] = nil; return nil end
    local e = list[n]
    list[n] = nil
    if e.expires > t and idle_ok(e.stream) then
      -- an emptied list stays for the give that usually follows (a sweep
      -- removes it if none does)
      return e.stream, e.reused + 1, e.data
    end
    close(e.stream)
  end
end

--- Put an idle connection back for `key`. `opts`: `idle` (seconds it may
-- stay idle, default 60; `0` for no limit), `size` (how many idle ones
-- `key` keeps, default 30: past that the oldest is closed), `reused` (the
-- count `take` returned, default 0), `data` (kept with it, returned by
-- `take`), `dubious` (a reason: the caller's last request on it did not
-- finish cleanly, so it is closed). Returns `true`, or closes the stream
-- and returns `nil, reason` ("unread data in buffer", "closed", ...).
function M.give(key, stream, opts)
  if type(key) ~= "string" then
    error("quench.pool.give: bad argument #1 (key string expected, got " .. type(key) .. ")", 2)
  end
  opts = opts or {}
  if opts.dubious then close(stream); return nil, tostring(opts.dubious) end
  local refused = refusal(stream)
  if refused then close(stream); return nil, refused end
  local idle, size = opts.idle or M.DEFAULT_IDLE, opts.size or M.DEFAULT_SIZE
  if type(idle) ~= "number" or idle < 0 or idle ~= idle then
    close(stream)
    error("quench.pool.give: opts.idle must be a number of seconds >= 0", 2)
  end
  if math.type(size) ~= "integer" or size < 1 then
    if type(size) == "number" and size >= 1 and size == math.floor(size) then
      size = math.tointeger(size)
    else
      close(stream)
      error("quench.pool.give: opts.size must be an integer >= 1", 2)
    end
  end
  return store(key, stream, idle, size, opts.reused or 0, opts.data)
end

-- give without the options table, its arguments checked by the caller
-- (quench.ngx's setkeepalive): idle in seconds (0: no limit), size an
-- integer >= 1.
function M._give(key, stream, idle, size, reused, data)
  if quiet(stream) ~= true then
    local refused = refusal(stream)
    if refused then close(stream); return nil, refused end
  end
  return store(key, stream, idle, size, reused, data)
end

--- How many idle connections `key` has (all keys when `key` is nil).
-- Expired ones are not counted (they are closed at the next use).
function M.count(key)
  local t, n = now(), 0
  for k, list in pairs(pools) do
    if key == nil or k == key then
      for i = 1, #list do
        if list[i].expires > t then n = n + 1 end
      end
    end
  end
  return n
end

--- Close the idle connections of `key` (of every key when `key` is nil).
function M.clear(key)
  for k, list in pairs(pools) do
    if key == nil or k == key then
      for i = 1, #list do close(list[i].stream) end
      pools[k] = nil
    end
  end
end

return M
