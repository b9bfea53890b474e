-- quench.http: an HTTP/1.x server. Loaded by luaopen_quench with the module.
--
-- One task accepts; no connection has a task of its own. Every connection
-- has an entry in the server's lot (lua/http_lot.c) for its whole life: C
-- watches its socket for the next whole head (parsed there, over
-- picohttpparser) and, while a request is handled, for the client going
-- away. For a head, the lot spawns the handler in a task of its own (from
-- C, as the head is taken: no Lua per head before the handler), which
-- writes the response and hands the connection back to the lot for its
-- next head (pipelined requests are answered in order: their bytes wait
-- in the stream's buffer meanwhile) or closes it. One task of the server
-- (dispatch) is woken for the rest: a bad or late head gets a task that
-- answers it and closes, a client gone while its request runs one that
-- cancels it.
--
-- Cancellation: a client that goes away (EOF or an error on its socket)
-- while its handler runs gets the handler cancelled (h:cancel with
-- CLIENT_GONE; after `cancel_grace` seconds it is aborted); server:stop()
-- closes the listener and idle connections at once, lets requests in
-- flight finish for `grace` seconds, then aborts what is left. A handler's
-- task holds its connection as a <close> value and server:close() closes
-- every connection, so no handler outlives its connection.
--
-- docs/http.md is the guide; spec/http_spec.lua tests every line of it.
local quench = ...

local http = quench.http
local send_head_c, new_lot, field_c = http._send_head, http._lot, http._field
local finish_method = http._finish_method
local request_index = http._request_index
-- two of the lot's methods, called once a request: taken from the first
-- lot made (a method call on a userdata looks it up through __index)
local lot_park, lot_next

-- The server's own state in a request, a response and a connection is kept
-- in their tables' array parts, at these indexes, not under string keys: a
-- request's tables are made in C (lua/http_lot.c, start_request, _finish,
-- which use the same indexes), where a string key costs a hash insert
-- (~200 instructions) and an array slot ~40. A user's own fields (and the
-- values a request caches, req.path...) go to the hash part as before.
local REQ_HEAD, REQ_RES, REQ_DRAIN = 1, 2, 3   -- the head (lua/http.c), the response, the
                                               -- body must be read to the end before reuse
local RES_HS, RES_CONN, RES_STATUS, RES_NH, RES_H, RES_LENGTH, RES_CLOSE, RES_DATE, RES_CHUNKED =
      1, 2, 3, 4, 5, 6, 7, 8, 9                -- _hs (below), the connection, the status, the
                                               -- header lines (count, list), Content-Length,
                                               -- Connection: close, Date, chunked
local CONN_TASK = 1                            -- the task working for the connection, or false
http._send_head, http._lot, http._field, http._finish_method, http._request_index = nil, nil, nil, nil, nil

local spawn, timeout = quench.spawn, quench.timeout
local is_cancelled = quench.is_cancelled
local concat, format, tostring, type, pairs = table.concat, string.format, tostring, type, pairs
local setmetatable, error = setmetatable, error
local os_time, os_date = os.time, os.date

--- The reason a handler is cancelled with when its client goes away.
http.CLIENT_GONE = "quench.http: the client went away"
--- The reason of a handler cancelled by server:stop after its grace.
http.SERVER_STOPPING = "quench.http: the server is stopping"

local DEFAULTS = {
  max_line = 8 * 1024,          -- request line (414 above)
  max_head = 16 * 1024,         -- request line and header fields (431 above)
  max_headers = 100,            -- header fields (431 above)
  max_body = 1024 * 1024,       -- request body (413 above)
  header_timeout = 10,          -- seconds to receive a whole head (from the first byte)
  body_timeout = 30,            -- seconds without a body byte while reading a body
  keepalive_timeout = 5,        -- seconds an idle keep-alive connection is kept
  idle_park = 1,                -- accepted, no effect: every idle connection is parked at once
  cancel_grace = 5,             -- seconds a cancelled handler gets before it is aborted
  linger_timeout = 2,           -- seconds an error answer's connection drains the client
  grace = 10,                   -- server:stop's default grace
  max_requests = 0,             -- per connection; 0: no limit
  max_connections = 10000,      -- open at once; more wait in the backlog (0: no limit)
  backlog = false, reuseport = false, nodelay = true,
  sigterm = false,              -- serve: stop (with `grace`) on SIGTERM
  on_error = false,             -- function(err, req) for handler errors (default: stderr)
  tls = false,
}

local STATUS = {
  [100] = "Continue", [101] = "Switching Protocols",
  [200] = "OK", [201] = "Created", [202] = "Accepted", [203] = "Non-Authoritative Information",
  [204] = "No Content", [205] = "Reset Content", [206] = "Partial Content",
  [300] = "Multiple Choices", [301] = "Moved Permanently", [302] = "Found", [303] = "See Other",
  [304] = "Not Modified", [307] = "Temporary Redirect", [308] = "Permanent Redirect",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [406] = "Not Acceptable", [408] = "Request Timeout",
  [409] = "Conflict", [410] = "Gone", [411] = "Length Required", [412] = "Precondition Failed",
  [413] = "Content Too Large", [414] = "URI Too Long", [415] = "Unsupported Media Type",
  [416] = "Range Not Satisfiable", [417] = "Expectation Failed", [422] = "Unprocessable Content",
  [426] = "Upgrade Required", [429] = "Too Many Requests",
  [431] = "Request Header Fields Too Large",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout", [505] = "HTTP Version Not Supported",
}

local function check_opts(fname, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error(format("bad argument to '%s' (options: table expected, got %s)", fname, type(opts)), 3)
  end
  local o = {}
  for k, v in pairs(DEFAULTS) do o[k] = v end
  for k, v in pairs(opts or {}) do
    if DEFAULTS[k] == nil then
      error(format("%s: unknown option '%s'", fname, tostring(k)), 3)
    end
    local d = DEFAULTS[k]
    if type(d) == "number" and (type(v) ~= "number" or v < 0) then
      error(format("%s: option '%s' must be a non-negative number", fname, k), 3)
    end
    o[k] = v
  end
  if o.tls then
    if not quench.tls then
      error(fname .. ": option 'tls' needs quench.tls, which this build does not have", 3)
    end
    if type(o.tls) ~= "table" then
      error(fname .. ": option 'tls' must be a table of TLS options (certificate, key, ...)", 3)
    end
  end
  for _, k in ipairs { "max_line", "max_head", "max_headers", "max_body", "max_requests",
                       "max_connections" } do
    if o[k] ~= math.floor(o[k]) then error(format("%s: option '%s' must be an integer", fname, k), 3) end
  end
  if o.max_line < 16 or o.max_line > 0xfffff then
    error(fname .. ": option 'max_line' must be in 16..1048575", 3)
  end
  if o.max_head < 16 or o.max_head > 0xffffffff then
    error(fname .. ": option 'max_head' must be in 16..4294967295", 3)
  end
  if o.max_headers < 1 or o.max_headers > 1024 then
    error(fname .. ": option 'max_headers' must be in 1..1024", 3)
  end
  if o.on_error and type(o.on_error) ~= "function" then
    error(fname .. ": option 'on_error' must be a function", 3)
  end
  return o
end

-- The Date header, made once a second.
local date_sec, date_str = -1, ""
local function http_date()
  local now = os_time()
  if now ~= date_sec then
    date_sec, date_str = now, os_date("!%a, %d %b %Y %H:%M:%S GMT", now)
  end
  return date_str
end

-- A whole response with a body and no extra fields, written at once: what
-- the server answers itself (errors, 100 Continue aside).
local function simple_response(stream, status, body, close)
  return stream:write(format(
    "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n" ..
    "Content-Length: %d\r\n%s\r\n%s",
    status, STATUS[status] or "", http_date(), #body, close and "Connection: close\r\n" or "", body))
end

---------------------------------------------------------------------------
-- Query strings
---------------------------------------------------------------------------

local function unescape(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- Decode "%XX" escapes and "+" of a query string component.
http.unescape = function(s)
  if type(s) ~= "string" then
    error("bad argument #1 to 'quench.http.unescape' (string expected, got " .. type(s) .. ")", 2)
  end
  return unescape(s)
end

--- Parse a query string: name -> value, a list of values for a repeated name.
function http.parse_query(q)
  if type(q) ~= "string" then
    error("bad argument #1 to 'quench.http.parse_query' (string expected, got " .. type(q) .. ")", 2)
  end
  local t = {}
  for pair in q:gmatch("[^&;]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k, v = unescape(k), unescape(v)
    local old = t[k]
    if old == nil then t[k] = v
    elseif type(old) == "table" then old[#old + 1] = v
    else t[k] = { old, v } end
  end
  return t
end

---------------------------------------------------------------------------
-- Requests
---------------------------------------------------------------------------

local Request = {}
local getters = {}

-- The next body bytes (at most max), "" never; nil at the end; nil, msg,
-- code on a failure (ETIMEDOUT after body_timeout without a byte, EOF,
-- EPROTO for a malformed chunked body, EMSGSIZE over max_body).
local function body_chunk(req, max)
  local head, conn = req[REQ_HEAD], req[REQ_RES][RES_CONN]
  local stream = conn.stream
  if conn.continue_due then
    conn.continue_due = false
    if req[REQ_RES][RES_HS] < 2 then stream:write("HTTP/1.1 100 Continue\r\n\r\n") end
  end
  while true do
    local v, msg, code = head:body_some(stream, max)
    if v == false then
      local ok, a, b, c = timeout(conn.server.opts.body_timeout, head:body_op(stream, max))
      if not ok then
        v, msg, code = nil, "ETIMEDOUT: no request body byte within body_timeout", "ETIMEDOUT"
      else
        v, msg, code = a, b, c
      end
    end
    if v ~= "" then
      if v == nil and code then
        req._body_error = code
        if code == "EMSGSIZE" then req._status_hint = 413
        elseif code == "EPROTO" then req._status_hint = 400
        elseif code == "ETIMEDOUT" then req._status_hint = 408 end
      end
      return v, msg, code
    end
  end
end

--- The whole request body (at most max_body bytes), or nil, msg, code.
function Request:body()
  if self._body ~= nil then return self._body end
  if self._reading then error("quench.http.request:body: the body is being read by a reader", 2) end
  local parts, n = {}, 0
  while true do
    local s, msg, code = body_chunk(self, 64 * 1024)
    if s == nil then
      if code then return nil, msg, code end
      break
    end
    n = n + 1
    parts[n] = s
  end
  self._body = concat(parts)
  return self._body
end

local Reader = {}
Reader.__index = Reader

function Reader:_fill()
  if self.eof then return false end
  local s, msg, code = body_chunk(self.req, 64 * 1024)
  if s == nil then
    if code then return nil, msg, code end
    self.eof = true
    return false
  end
  self.buf = self.buf .. s
  return true
end

--- Read from the body as a stream reads: n bytes, "l", "L", "a".
function Reader:read(fmt)
  fmt = fmt or "l"
  if type(fmt) == "string" then fmt = fmt:gsub("^%*", "") end
  if type(fmt) == "number" then
    if fmt < 0 or fmt ~= math.floor(fmt) then
      error("bad argument #1 to 'read' (count must be a non-negative integer)", 2)
    end
    while #self.buf < fmt do
      local ok, msg, code = self:_fill()
      if ok == nil then return nil, msg, code end
      if not ok then break end
    end
    if #self.buf == 0 and (fmt > 0 or self.eof) then return nil end
    local s = self.buf:sub(1, fmt)
    self.buf = self.buf:sub(fmt + 1)
    return s
  elseif fmt == "l" or fmt == "L" then
    while true do
      local i = self.buf:find("\n", 1, true)
      if i then
        local s = self.buf:sub(1, fmt == "L" and i or i - 1)
        self.buf = self.buf:sub(i + 1)
        return s
      end
      local ok, msg, code = self:_fill()
      if ok == nil then return nil, msg, code end
      if not ok then
        if #self.buf == 0 then return nil end
        local s = self.buf
        self.buf = ""
        return s
      end
    end
  elseif fmt == "a" then
    while true do
      local ok, msg, code = self:_fill()
      if ok == nil then return nil, msg, code end
      if not ok then break end
    end
    local s = self.buf
    self.buf = ""
    return s
  end
  error("bad argument #1 to 'read' (invalid format (a byte count, \"l\", \"L\" or \"a\"))", 2)
end

--- Whatever body bytes come next (at most max), nil at the end.
function Reader:read_some(max)
  if #self.buf > 0 then
    local s = max and self.buf:sub(1, max) or self.buf
    self.buf = self.buf:sub(#s + 1)
    return s
  end
  if self.eof then return nil end
  local s, msg, code = body_chunk(self.req, max or 64 * 1024)
  if s == nil then
    if code then return nil, msg, code end
    self.eof = true
  end
  return s
end

--- An iterator over the body's lines (or another read format).
function Reader:lines(fmt)
  return function()
    local s, msg = self:read(fmt or "l")
    if s == nil and msg then error("quench.http.reader:lines: " .. msg, 2) end
    return s
  end
end

--- A reader of the body (streaming).
function Request:reader()
  if self._body ~= nil then error("quench.http.request:reader: the body was read already", 2) end
  self._reading = true
  return setmetatable({ req = self, buf = "", eof = false }, Reader)
end

--- A header's value (repeated fields joined with ", "), case-insensitive.
function Request:header(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'quench.http.request:header' (string expected, got " .. type(name) .. ")", 2)
  end
  return self[REQ_HEAD]:header(name)
end

--- Every value of a header, in order, as a list (empty if none).
function Request:header_all(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'quench.http.request:header_all' (string expected, got "
          .. type(name) .. ")", 2)
  end
  return self[REQ_HEAD]:header(name, true)
end

local Headers = {}
Headers.__index = function(self, k)
  if type(k) ~= "string" then return nil end
  return self[REQ_HEAD]:header(k)
end
Headers.__pairs = function(self)
  local head, i = self[REQ_HEAD], 0
  return function()
    i = i + 1
    return head:field(i)
  end, self, nil
end
Headers.__len = function(self) return self[REQ_HEAD]:nfields() end
Headers.__newindex = function() error("quench.http.request.headers: read-only", 2) end

-- method, path, query and target are made in C, from the head (below)
function getters.args(req) return http.parse_query(req.query) end
function getters.version(req) return req[REQ_RES][RES_CONN].minor == 1 and "1.1" or "1.0" end
function getters.headers(req) return setmetatable({ req[REQ_HEAD] }, Headers) end   -- [REQ_HEAD]
function getters.peer(req)
  local conn = req[REQ_RES][RES_CONN]
  if conn.server.unix then return { path = conn.server.unix } end
  local host, port = conn.stream:getpeername()
  return { host = host, port = port }
end
function getters.trailers(req) return req[REQ_HEAD]:trailers() or {} end

-- A method, else a field: method, path, query and target made in C from
-- the head (lua/http.c, request_index), the others by their getter above;
-- each is kept in the request once made, but trailers (they come once the
-- body is read).
Request.__index = request_index(Request, getters)
Request.__name = "quench.http.request"

---------------------------------------------------------------------------
-- Responses
---------------------------------------------------------------------------

local Response = {}
Response.__index = Response
Response.__name = "quench.http.response"

-- A response's res[RES_HS]: 0 nothing set (status 200, no field, no
-- length: the head is made without reading the slots a response leaves
-- nil), 1 status or a header set, 2 the head sent, 3 finished (one slot
-- for the four states). Status and header calls set it to 1.
local function check_started(res, fname)
  if res[RES_HS] >= 2 then
    error(fname .. ": the response head was sent already (status and header come before write)", 3)
  end
  res[RES_HS] = 1
end

--- Set the status code (default 200).
function Response:status(code)
  check_started(self, "quench.http.response:status")
  if math.type(code) ~= "integer" or code < 200 or code > 999 then
    error("bad argument #1 to 'quench.http.response:status' (an integer status in 200..999 expected)", 2)
  end
  self[RES_STATUS] = code
  return self
end

--- Add a header field (call again for a repeated one).
function Response:header(name, value)
  check_started(self, "quench.http.response:header")
  if type(value) == "number" then value = tostring(value) end
  -- checked in C (a token name; a value without CR, LF or NUL), which
  -- makes the field's line, or says which of the server's own it is
  local kind, line = field_c(name, value)
  if kind == 0 then
    local n = (self[RES_NH] or 0) + 1
    self[RES_NH] = n
    local h = self[RES_H]
    if not h then h = {}; self[RES_H] = h end
    h[n] = line
    return self
  elseif kind == nil then
    error("bad argument #1 to 'quench.http.response:header' (a header name expected)", 2)
  elseif kind == false then
    error("bad argument #2 to 'quench.http.response:header' (a string without CR, LF or NUL expected)", 2)
  end
  if kind == 1 then
    local n = tonumber(value)
    if not n or n < 0 or n ~= math.floor(n) or not value:match("^%s*%d+%s*$") then
      error("bad argument #2 to 'quench.http.response:header' (Content-Length must be digits)", 2)
    end
    self[RES_LENGTH] = math.tointeger(n)
    return self
  elseif kind == 2 then
    error("quench.http.response:header: Transfer-Encoding is the server's to set"
          .. " (a response written without Content-Length is chunked)", 2)
  elseif kind == 3 then
    if value:lower():find("close", 1, true) then self[RES_CLOSE] = true end
    return self
  end
  self[RES_DATE] = value                        -- kind 4
  return self
end

local function no_body(status, is_head)
  return is_head or status == 204 or status == 304 or status < 200
end

-- "HTTP/1.1 200 OK\r\nDate: ", made once per status.
local status_lines = setmetatable({}, { __index = function(t, status)
  local line = "HTTP/1.1 " .. status .. " " .. (STATUS[status] or "Unknown") .. "\r\nDate: "
  t[status] = line
  return line
end })

-- Send the head (and `first`, the first piece of body). len: the body
-- length, or false (chunked, or until close); done: finish sends it. The bytes are assembled and
-- written in C (_send_head): one write, no Lua string for the head.
local function send_head(res, len, first, done)
  local conn, status = res[RES_CONN], res[RES_STATUS] or 200
  res[RES_HS] = done and 3 or 2
  local close = res[RES_CLOSE] or not conn.keep or conn.server.state ~= "serving"
  local framing, bodyless = -2, conn.is_head or status == 204 or status == 304 or status < 200
  if status == 204 or status < 200 or (status == 304 and not len) then
    framing = -2
  elseif len then
    framing = len
  elseif conn.minor == 1 then
    framing = -1
    if not bodyless then res[RES_CHUNKED] = true end
  else
    close = true                            -- HTTP/1.0: the body ends at close
  end
  if conn.continue_due then                 -- the body was never asked for: it cannot be
    conn.continue_due = false               -- told from the next request, so close after
    close = true
  end
  if close then conn.keep = false end
  local nh = res[RES_NH]
  local fields = nh == 1 and res[RES_H][1] or nh and concat(res[RES_H], "", 1, nh)   -- one: as it is
  local stream = conn.stream
  local ok, msg, code = send_head_c(stream, status_lines[status], res[RES_DATE], fields,
                                    framing, close and 1 or (conn.minor == 0 and 2 or 0),
                                    not bodyless and first, res[RES_CHUNKED])
  if ok == false then return stream:write(msg) end   -- the queue is full: wait for room
  return ok, msg, code
end

-- send_head for a response nothing was set on (_hs 0: status 200, no
-- field) finished (done) with its whole body: most handlers' answer.
local STATUS_200 = "HTTP/1.1 200 OK\r\nDate: "
local function send_plain(res, body)
  local conn = res[RES_CONN]
  res[RES_HS] = 3
  local close = not conn.keep or conn.server.state ~= "serving"
  if conn.continue_due then                 -- as send_head
    conn.continue_due = false
    close = true
  end
  if close then conn.keep = false end
  local stream = conn.stream
  local ok, msg, code = send_head_c(stream, STATUS_200, false, false, body and #body or 0,
                                    close and 1 or (conn.minor == 0 and 2 or 0),
                                    not conn.is_head and body, false)
  if ok == false then return stream:write(msg) end
  return ok, msg, code
end

--- Write a piece of the body (the head first if it was not sent).
function Response:write(chunk)
  if self[RES_HS] == 3 then error("quench.http.response:write: the response is finished", 2) end
  if type(chunk) == "number" then chunk = tostring(chunk) end
  if type(chunk) ~= "string" then
    error("bad argument #1 to 'quench.http.response:write' (string expected, got " .. type(chunk) .. ")", 2)
  end
  local ok, msg, code
  if self[RES_HS] < 2 then
    ok, msg, code = send_head(self, self[RES_LENGTH], chunk)
  elseif chunk == ""
      or not self[RES_CHUNKED] and no_body(self[RES_STATUS] or 200, self[RES_CONN].is_head) then
    return self
  elseif self[RES_CHUNKED] then
    ok, msg, code = self[RES_CONN].stream:write(format("%x\r\n", #chunk), chunk, "\r\n")
  else
    ok, msg, code = self[RES_CONN].stream:write(chunk)
  end
  if not ok then
    self[RES_CONN].keep = false
    return nil, msg, code
  end
  return self
end

-- Response.finish is lua/http_lot.c's (finish_method): a response nothing
-- was set on, finished with a string or nothing (most handlers' answer),
-- has its head and body written there, in C, from the connection's entry;
-- it calls finish_wait when the stream's queue is full and finish_rest for
-- any other response. finish_rest is called from C: its errors are raised
-- at level 3, the caller of res:finish.
local function finish_wait(self, bytes)
  local done, m, c = self[RES_CONN].stream:write(bytes)
  if done then return true end
  self[RES_CONN].keep = false
  return nil, m, c
end

local function finish_rest(self, body)
  local hs = self[RES_HS]
  if hs == 3 then error("quench.http.response:finish: the response is finished already", 3) end
  if body ~= nil and type(body) ~= "string" then
    if type(body) == "number" then body = tostring(body)
    else
      error("bad argument #1 to 'quench.http.response:finish' (string expected, got " .. type(body) .. ")", 3)
    end
  end
  local ok, msg, code = true, nil, nil
  if hs == 0 then
    ok, msg, code = send_plain(self, body)
  elseif hs == 1 then
    ok, msg, code = send_head(self, self[RES_LENGTH] or (body and #body or 0), body, true)
  else
    self[RES_HS] = 3
    if body and body ~= "" then
      local r1, m1, c1 = self:_raw_write(body)
      if not r1 then ok, msg, code = nil, m1, c1 end
    end
    if ok and self[RES_CHUNKED] then
      ok, msg, code = self[RES_CONN].stream:write("0\r\n\r\n")
    end
  end
  if not ok then
    self[RES_CONN].keep = false
    return nil, msg, code
  end
  return true
end

--- End the response, with a last piece of body (or the whole body).
Response.finish = finish_method(finish_rest, finish_wait)

function Response:_raw_write(chunk)
  if no_body(self[RES_STATUS] or 200, self[RES_CONN].is_head) then return true end
  if self[RES_CHUNKED] then
    return self[RES_CONN].stream:write(format("%x\r\n", #chunk), chunk, "\r\n")
  end
  return self[RES_CONN].stream:write(chunk)
end

--- Whether the head was sent.
function Response:started() return self[RES_HS] >= 2 end

---------------------------------------------------------------------------
-- Connections
---------------------------------------------------------------------------

local function report(conn, err, req)
  local on_error = conn.server.opts.on_error
  if on_error then
    local ok, e = pcall(on_error, err, req)
    if ok then return end
    err = tostring(err) .. "\n(and on_error failed: " .. tostring(e) .. ")"
  end
  io.stderr:write("quench.http: handler error: ", tostring(err), "\n")
end

-- Read and drop what the handler left of the body, up to a bound; false
-- if the connection cannot be reused.
local function drain(req)
  local left = 64 * 1024
  while true do
    local s = body_chunk(req, left)
    if s == nil then return req._body_error == nil end
    left = left - #s
    if left <= 0 then return false end
  end
end

-- Close a connection, once: its stream, its entry in the lot, its count.
local function close_conn(conn)
  local stream = conn.stream
  if stream then
    local server = conn.server
    conn.stream = false
    server.lot:remove(conn.e)
    conn.e = false
    stream:close()
    server.nconns = server.nconns - 1
    if server.watched then server.changed:notify_all() end
  end
end

-- A connection has no task of its own: between requests the server's lot
-- (lua/http_lot.c) watches it from C. A task works for it only while a request
-- is handled (the handler's) or an error is answered, and holds the
-- connection's table as a <close> value: however that task ends (aborted
-- included), the connection is closed, unless the task gave it back to the
-- lot first (conn[CONN_TASK] = false).
local Conn = { __close = function(conn) if conn[CONN_TASK] then close_conn(conn) end end }

-- Close a connection after an error answer (400, 408, 413, 431, ...)
-- without losing the answer: closing a socket whose input was not all read
-- makes the kernel send a reset, and a reset can destroy the answer in the
-- client's buffers before the client reads it (a slowloris client still
-- sending its head, a body nobody will read). So end our side first (the
-- client reads the answer, then EOF) and read and discard what the client
-- still sends, until it closes, for at most linger_timeout seconds and
-- 64 KiB: nginx's lingering close. The task holding the connection is
-- bounded by it; the caller's <close> then closes the stream.
local LINGER_BYTES = 64 * 1024
local function lingering_close(stream, seconds)
  if not stream:shutdown() or seconds <= 0 then return end
  timeout(seconds, function()
    local n = 0
    while n < LINGER_BYTES do
      local data = stream:read_some(16 * 1024)
      if not data then return end
      n = n + #data
    end
  end)
end

-- The task of an error answer: the answer, then a lingering close.
local function answer_close(conn, status, msg)
  local _conn <close> = conn
  simple_response(conn.stream, status, msg, true)
  lingering_close(conn.stream, conn.server.opts.linger_timeout)
end

-- A request's task is lua/http_lot.c's (request_task): it calls the
-- handler, holds the connection as its to-be-closed value (however the
-- task ends, aborted included, the connection is closed unless the task
-- gave it back to the lot first: conn[CONN_TASK] false), and gives the
-- connection back itself in the common case (the response finished, kept
-- alive, no body to drain, the server serving). Every other ending is
-- this: whatever the handler left undone, then the connection given back
-- to the lot for its next head (the next pipelined one may be buffered
-- already), or closed.
local function after_request(req, res, ok, err)
  local conn = res[RES_CONN]
  local server = conn.server
  if not ok then
    if is_cancelled(err) then error(err, 0) end
    report(conn, err, req)
    if res[RES_HS] < 2 then
      res[RES_HS], res[RES_NH], res[RES_LENGTH], res[RES_STATUS] = 1, nil, nil, 500
      conn.keep = false
      res:finish("internal server error\n")
    else
      conn.keep = false                   -- a response cut short: only closing says so
      res[RES_HS] = 3
    end
  elseif res[RES_HS] ~= 3 then
    if res[RES_HS] < 2 and req._status_hint then
      res[RES_HS], res[RES_NH], res[RES_LENGTH], res[RES_STATUS] = 1, nil, nil, req._status_hint
      conn.keep = false
      res:finish(STATUS[req._status_hint] .. "\n")
    else
      res:finish()
    end
  end
  if res[RES_HS] == 3 and conn.keep and server.state == "serving"
     and (not req[REQ_DRAIN] or req[REQ_HEAD]:body_done() or drain(req)) then
    conn[CONN_TASK] = false
    if not lot_park(server.lot, conn.e) then close_conn(conn) end
  end
end

-- The client of a request in progress went away: cancel its handler, abort
-- it after cancel_grace, then close (a handler cancelled before it ran has
-- no <close> of its own to do it).
local function client_gone(conn, h)
  h:cancel(http.CLIENT_GONE)
  if not timeout(conn.server.opts.cancel_grace, h:join_op()) then h:abort(http.CLIENT_GONE) end
  -- unless h handed the connection back first (it ended in the meantime,
  -- and the connection may serve a pipelined request in another task now)
  if conn[CONN_TASK] == h then close_conn(conn) end
end

local NEXT_CLOSE, NEXT_LATE, NEXT_BAD, NEXT_GONE = 0, 2, 3, 4   -- 1, a head: the lot starts it

-- The server's one task for its connections: woken by the lot when a
-- watch is ready. A head's request task is spawned by the lot itself
-- (lua/http_lot.c, start_request: the connection's fields, the request and the
-- response made as run_request expects them; false comes back once every
-- ready head has its task); this task answers a bad or late head, cancels
-- the request of a client that left, closes.
local function dispatch(server)
  local lot = server.lot
  while true do
    local conn, what, status, msg = lot_next(lot)
    if conn == nil then return end                -- false: heads only, each started by the lot
    if what == NEXT_GONE then
      local h = conn[CONN_TASK]
      if h then spawn(client_gone, conn, h) end
    elseif what == NEXT_CLOSE then
      close_conn(conn)
    elseif what == NEXT_LATE then
      conn[CONN_TASK] = spawn(answer_close, conn, 408, "request timeout\n")
    elseif what == NEXT_BAD and msg ~= "the connection ended inside a request head" then
      conn[CONN_TASK] = spawn(answer_close, conn, status, msg .. "\n")   -- 400, 413, 414, 431, 501
    elseif conn then
      close_conn(conn)
    end
  end
end

---------------------------------------------------------------------------
-- Servers
---------------------------------------------------------------------------

-- Wait until a connection closes. Closing notifies only once something
-- has waited (serve at max_connections, or at its end; stop): not on every
-- `Connection: close` request.
local function changed(server)
  server.watched = true
  server.changed:notified()
end

local Server = {}
Server.__index = Server
Server.__name = "quench.http.server"

--- Listen on host and port (or a Unix socket, host "unix:/path"): a
--- server, or nil, msg, code.
function http.listen(host, port, opts)
  local path = type(host) == "string" and host:match("^unix:(.+)$")
  if path and type(port) == "table" and opts == nil then port, opts = nil, port end
  local o = check_opts("quench.http.listen", opts)
  local lopts = { nodelay = o.nodelay, reuseport = o.reuseport or nil, backlog = o.backlog or nil }
  local l, msg, code
  if path then                                -- quench.unix: no TCP options apply
    if o.tls then error("quench.http.listen: option 'tls' is for TCP, not a Unix socket", 2) end
    l, msg, code = quench.unix.listen(path, { backlog = o.backlog or nil })
  elseif o.tls then                           -- quench.tls: the handshake runs at the first read
    for k, v in pairs(o.tls) do lopts[k] = v end
    l, msg, code = quench.tls.listen(host, port, lopts)
  else
    l, msg, code = quench.tcp.listen(host, port, lopts)
  end
  if not l then return nil, msg, code end
  local lot = new_lot(o.max_line, o.max_head, o.max_headers, o.max_body, o.header_timeout,
                      o.keepalive_timeout, o.max_requests, after_request, Request, Response)
  lot_park, lot_next = lot.park, lot.next
  return setmetatable({ listener = l, opts = o, nconns = 0, state = "ready",
                        changed = quench.notify(), watched = false, unix = path or nil,
                        lot = lot }, Server)
end

--- The address the server listens on: host, port.
function Server:getsockname() return self.listener:getsockname() end

--- Accept and serve connections with handler(req, res) until stopped.
function Server:serve(handler)
  if type(handler) ~= "function" then
    error("bad argument #1 to 'quench.http.server:serve' (function expected, got " .. type(handler) .. ")", 2)
  end
  if self.state ~= "ready" then
    error("quench.http.server:serve: the server is " .. self.state .. " (serve once)", 2)
  end
  self.state, self.handler = "serving", handler
  self.lot:handle(handler)
  local _guard <close> = quench.guard(function() self:close() end)
  local sig
  if self.opts.sigterm then
    sig = spawn(function()
      quench.signal("SIGTERM")
      self:stop(self.opts.grace)
    end)
  end
  local _sig <close> = sig
  local _dispatch <close> = spawn(dispatch, self)
  local listener, lot, max_conns = self.listener, self.lot, self.opts.max_connections
  while self.state == "serving" do
    while max_conns > 0 and self.nconns >= max_conns and self.state == "serving" do
      changed(self)                         -- at the limit: accept again when one ends
    end
    if self.state ~= "serving" then break end
    local s, _, code = listener:accept()
    if s and self.state ~= "serving" then     -- stopped while this one came: the lot may be closed
      s:close()
      break
    elseif s then
      -- its fields (seven hash slots and the task in its array part), made here: none
      -- added later (a rehash)
      local conn = setmetatable({ false, server = self, stream = s, e = false,   -- [CONN_TASK]
                                  minor = 1, keep = true, is_head = false, continue_due = false },
                                Conn)
      local e = lot:add(conn, s)
      if e then
        conn.e = e
        self.nconns = self.nconns + 1
      else
        s:close()                             -- out of memory
      end
    elseif code == "ECANCELED" or self.state ~= "serving" then
      break
    else
      quench.sleep(0.1)                       -- EMFILE and the like: let descriptors free up
    end
  end
  while self.nconns > 0 do changed(self) end
  return true
end

--- Stop: no new connections; idle ones closed; in-flight requests get
--- `grace` seconds, then are aborted. Waits until every connection is done.
function Server:stop(grace)
  grace = grace == nil and self.opts.grace or grace
  if type(grace) ~= "number" or grace < 0 then
    error("bad argument #1 to 'quench.http.server:stop' (grace: a non-negative number expected)", 2)
  end
  if self.state == "stopped" then return true end
  self.state = "stopping"
  self.listener:close()
  local idle = self.lot:close_idle()           -- their entries are freed: forget them first
  for i = 1, #idle do idle[i].e = false end
  for i = 1, #idle do close_conn(idle[i]) end
  timeout(grace, function()
    while self.nconns > 0 do changed(self) end
  end)
  self:close()
  return true
end

--- Close at once: the listener and every connection (handlers aborted).
function Server:close()
  self.state = "stopped"
  self.listener:close()
  local conns = self.lot:close()               -- their entries are freed: forget them first
  for i = 1, #conns do conns[i].e = false end
  local me = quench.current()
  for i = 1, #conns do
    local conn = conns[i]
    local h = conn[CONN_TASK]
    if h ~= me then
      if h then h:abort(http.SERVER_STOPPING) end
      close_conn(conn)
    end
  end
  return true
end

Server.__close = Server.close

--- listen and serve in one call: quench.http.serve(opts, handler); opts.host, opts.port.
function http.serve(opts, handler)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'quench.http.serve' (table expected, got " .. type(opts) .. ")", 2)
  end
  local o = {}
  for k, v in pairs(opts) do if k ~= "host" and k ~= "port" and k ~= "on_listen" then o[k] = v end end
  local server, msg, code = http.listen(opts.host or "127.0.0.1", opts.port or 0, o)
  if not server then return nil, msg, code end
  if opts.on_listen then opts.on_listen(server) end
  return server:serve(handler)
end

return http
