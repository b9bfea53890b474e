-- quench.http.request: the HTTP client. Loaded by luaopen_quench with the
-- module, after quench/http.lua (the server).
--
-- The engine is libcurl's multi-socket API on the runtime's libuv loop
-- (core/http_client.c); lua/http_client.c makes a transfer from the
-- options checked here. request() awaits the final response head (feeding
-- an upload from a reader function when libcurl asks for bytes) and returns
-- a response whose body is read from the transfer's buffer as it arrives:
-- past 64 KiB unread the transfer pauses (CURLPAUSE), so a slow reader holds
-- the server back rather than fill memory.
--
-- Cancellation: until request() returns, the transfer is held in a <close>
-- variable, so a request dropped by a timeout, a select or an abort stops at
-- once (its connection closed, not reused half-read); afterwards the response
-- owns it (response:close(), a <close> variable, or garbage collection).
--
-- docs/http.md ("The client") is the guide; spec/http_client_spec.lua tests it.
local quench = ...

local http = quench.http
local new_xfer, url_error = http._xfer, http._url_error
local HEAD, NEED, DATA, DONE = http._HEAD, http._NEED, http._DATA, http._DONE
http._xfer, http._url_error, http._HEAD, http._NEED, http._DATA, http._DONE =
  nil, nil, nil, nil, nil, nil

local concat, format, tostring, type, pairs, ipairs = table.concat, string.format, tostring,
  type, pairs, ipairs
local setmetatable, error, math_type, ceil = setmetatable, error, math.type, math.ceil

local FNAME = "quench.http.request"

local OPTIONS = {
  method = true, url = true, headers = true, body = true, timeout = true, redirects = true,
  verify = true, cafile = true, capath = true, certificate = true, key = true, password = true,
  proxy = true, http_version = true, decompress = true, max_body = true,
}

local function bad(what, msg)
  error(format("bad argument #1 to '%s' (%s: %s)", FNAME, what, msg), 4)
end

local function opt_string(o, opts, k)
  local v = opts[k]
  if v == nil then return end
  if type(v) ~= "string" or v:find("\0", 1, true) then
    bad("opts." .. k, "a string without zero bytes expected, got " .. type(v))
  end
  o[k] = v
end

local function seconds_ms(what, v)
  if type(v) ~= "number" or v ~= v or v <= 0 or v == math.huge then
    bad(what, "a positive number of seconds expected")
  end
  local ms = ceil(v * 1000)
  if ms > 0x7fffffff then bad(what, "too large") end
  return ms
end

local function check_header(name, value)
  if type(name) ~= "string" or not name:match("^[%w!#$%%&'*+.^_`|~-]+$") then
    bad("opts.headers", "bad header name " .. format("%q", tostring(name)))
  end
  if math_type(value) then value = tostring(value) end
  if type(value) ~= "string" or value:find("[%z\r\n]") then
    bad("opts.headers", "the value of " .. name .. " must be a string without CR, LF or NUL")
  end
  -- libcurl: "Name:" removes a header, "Name;" sends it empty
  return value == "" and name .. ";" or name .. ": " .. value
end

local function normalize(opts)
  if type(opts) == "string" then opts = { url = opts } end
  if type(opts) ~= "table" then
    error(format("bad argument #1 to '%s' (a URL or a table expected, got %s)",
                 FNAME, type(opts)), 3)
  end
  for k in pairs(opts) do
    if not OPTIONS[k] then error(format("%s: unknown option '%s'", FNAME, tostring(k)), 3) end
  end
  local o = {}
  local url = opts.url
  if type(url) ~= "string" then bad("opts.url", "a string expected, got " .. type(url)) end
  if not url:lower():match("^https?://") then
    bad("opts.url", "an http:// or https:// URL expected, got " .. format("%q", url:sub(1, 64)))
  end
  local uerr = url_error(url)
  if uerr then bad("opts.url", uerr) end
  o.url = url
  local body = opts.body
  if body ~= nil and type(body) ~= "string" and type(body) ~= "function" then
    bad("opts.body", "a string or a reader function expected, got " .. type(body))
  end
  local method = opts.method
  if method == nil then
    method = body ~= nil and "POST" or "GET"
  elseif type(method) ~= "string" or not method:match("^[%w!#$%%&'*+.^_`|~-]+$") then
    bad("opts.method", "a method token (\"GET\", \"POST\"...) expected")
  end
  o.method = method
  if type(body) == "string" then
    o.body = body
  elseif body then
    o.feed = true
  end
  if method == "HEAD" and body ~= nil then bad("opts.body", "a HEAD request has no body") end
  local headers = {}
  if opts.headers ~= nil then
    if type(opts.headers) ~= "table" then
      bad("opts.headers", "a table expected, got " .. type(opts.headers))
    end
    for name, v in pairs(opts.headers) do
      if type(v) == "table" then
        for _, one in ipairs(v) do headers[#headers + 1] = check_header(name, one) end
      else
        headers[#headers + 1] = check_header(name, v)
      end
    end
  end
  o.headers = headers
  local t = opts.timeout
  o.connect_ms = 30000
  if type(t) == "number" then
    o.timeout_ms = seconds_ms("opts.timeout", t)
  elseif type(t) == "table" then
    for k in pairs(t) do
      if k ~= "connect" and k ~= "total" then
        bad("opts.timeout", "unknown part '" .. tostring(k) .. "' (connect, total)")
      end
    end
    if t.connect ~= nil then o.connect_ms = seconds_ms("opts.timeout.connect", t.connect) end
    if t.total ~= nil then o.timeout_ms = seconds_ms("opts.timeout.total", t.total) end
  elseif t ~= nil then
    bad("opts.timeout", "seconds or {connect =, total =} expected, got " .. type(t))
  end
  local r = opts.redirects
  if r == nil then
    r = 5
  elseif math_type(r) ~= "integer" or r < 0 or r > 100 then
    bad("opts.redirects", "an integer in 0..100 expected")
  end
  o.redirects = r
  if opts.verify ~= nil and type(opts.verify) ~= "boolean" then
    bad("opts.verify", "a boolean expected, got " .. type(opts.verify))
  end
  o.verify = opts.verify ~= false
  for _, k in ipairs { "cafile", "capath", "certificate", "key", "password", "proxy" } do
    opt_string(o, opts, k)
  end
  if opts.key and not opts.certificate then bad("opts.key", "given without opts.certificate") end
  local v = opts.http_version
  if v ~= nil and v ~= "1.1" and v ~= "2" then bad("opts.http_version", "\"1.1\" or \"2\" expected") end
  o.http_version = v
  if opts.decompress ~= nil and type(opts.decompress) ~= "boolean" then
    bad("opts.decompress", "a boolean expected, got " .. type(opts.decompress))
  end
  o.decompress = opts.decompress ~= false
  local mb = opts.max_body
  if mb == nil then
    mb = 8 * 1024 * 1024
  elseif math_type(mb) ~= "integer" or mb < 0 then
    bad("opts.max_body", "a non-negative integer expected")
  end
  o.max_body = mb
  o.source = type(body) == "function" and body or nil
  return o
end

-- Wait for one of `mask`, feeding the upload from `source` when asked.
local function step(x, source, mask)
  while true do
    local ev = x:wait(mask | NEED)
    if ev & NEED == 0 or ev & DONE ~= 0 then return ev end
    local chunk = source()
    while chunk == "" do chunk = source() end
    if chunk ~= nil and type(chunk) ~= "string" then
      error(format("%s: the body reader returned a %s (string or nil expected)",
                   FNAME, type(chunk)), 0)
    end
    x:feed(chunk)                                 -- nil: the end of the body
    if ev & mask ~= 0 then return ev end
  end
end

-- ---- response headers ----

local Headers = {}
Headers.__index = function(self, k)
  if type(k) ~= "string" then return nil end
  local vs = self._by[k:lower()]
  if vs == nil then return nil end
  return #vs == 1 and vs[1] or concat(vs, ", ")
end
Headers.__pairs = function(self)
  local fields, i = self._fields, 0
  return function()
    i = i + 1
    local f = fields[i]
    if f then return f[1], f[2] end
  end, self, nil
end
Headers.__len = function(self) return #self._fields end
Headers.__newindex = function() error("quench.http.response.headers: read-only", 2) end

-- The header lines after the status line; peer bytes: a line without a
-- colon is skipped, a folded line (obs-fold) continues the previous one.
local function parse_headers(raw)
  local fields, by = {}, {}
  local first = true
  for line in raw:gmatch("([^\n]*)\n?") do
    line = line:gsub("\r$", "")
    if first then
      first = false
    elseif line:match("^[ \t]") and #fields > 0 then
      local f = fields[#fields]
      f[2] = f[2] .. " " .. line:match("^[ \t]*(.-)[ \t]*$")
      local vs = by[f[1]:lower()]
      vs[#vs] = f[2]
    else
      local name, value = line:match("^([^:%s]+):[ \t]*(.-)[ \t]*$")
      if name then
        fields[#fields + 1] = { name, value }
        local lname = name:lower()
        local vs = by[lname]
        if not vs then
          vs = {}
          by[lname] = vs
        end
        vs[#vs + 1] = value
      end
    end
  end
  return setmetatable({ _fields = fields, _by = by }, Headers)
end

-- ---- the response ----

local Response = {}
Response.__index = Response
Response.__name = "quench.http.response"

-- The transfer's outcome once every byte is taken: nil at a complete end,
-- else nil, msg, code.
local function finish(self)
  local ok, msg, code = self._x:result()
  if ok then return true end
  return nil, msg, code
end

-- Take buffered bytes into the response's own list (kept across a dropped
-- wait: body() and the reader lose nothing when cancelled).
local function fill(self, max)
  local x = self._x
  while true do
    local s = x:take(max)
    if s then return s end
    local ev = step(x, self._source, DATA)
    if ev & DATA == 0 and ev & DONE ~= 0 then
      s = x:take(max)
      if s then return s end
      return false, finish(self)
    end
  end
end

function Response:body()
  if self._reader then error("quench.http.response:body: a reader is reading the body", 2) end
  if self._closed then return nil, "ECANCELED: the response was closed", "ECANCELED" end
  local parts, max = self._parts, self._max_body
  if not parts then
    parts = { n = 0 }
    self._parts = parts
  end
  if parts.whole then return parts.whole end
  while true do
    local s, ok, msg, code = fill(self, max + 1 - parts.n)
    if s then
      parts[#parts + 1] = s
      parts.n = parts.n + #s
      if parts.n > max then
        self:close()
        return nil, format("EMSGSIZE: the response body is over max_body (%d bytes)", max),
          "EMSGSIZE"
      end
    elseif ok then
      parts.whole = concat(parts)
      for i = #parts, 1, -1 do parts[i] = nil end
      return parts.whole
    else
      return nil, msg, code
    end
  end
end

local Reader = {}
Reader.__index = Reader
Reader.__name = "quench.http.body_reader"

function Response:reader()
  if self._parts then error("quench.http.response:reader: body() already read the body", 2) end
  if not self._reader then
    self._reader = setmetatable({ _res = self, _buf = "" }, Reader)
  end
  return self._reader
end

-- More bytes into the reader's buffer: true, or false, nil|msg, code at the end.
local function more(r, max)
  local res = r._res
  if res._closed then return false, "ECANCELED: the response was closed", "ECANCELED" end
  local s, ok, msg, code = fill(res, max)
  if s then
    r._buf = r._buf .. s
    return true
  end
  if ok then return false end
  return false, msg, code
end

function Reader:read_some(max)
  if max ~= nil and (math_type(max) ~= "integer" or max < 1) then
    error("bad argument #1 to 'quench.http.body_reader:read_some' (a positive integer expected)", 2)
  end
  max = max or 64 * 1024
  if #self._buf == 0 then
    local ok, msg, code = more(self, max)
    if not ok then return nil, msg, code end
  end
  local b = self._buf
  if #b <= max then
    self._buf = ""
    return b
  end
  self._buf = b:sub(max + 1)
  return b:sub(1, max)
end

function Reader:read(fmt)
  fmt = fmt or "l"
  if fmt == "a" then
    while true do
      local ok, msg, code = more(self, 64 * 1024)
      if not ok then
        if msg then return nil, msg, code end
        local b = self._buf
        self._buf = ""
        return b
      end
    end
  elseif fmt == "l" or fmt == "L" then
    while true do
      local i = self._buf:find("\n", 1, true)
      if i then
        local b = self._buf
        self._buf = b:sub(i + 1)
        return fmt == "L" and b:sub(1, i) or b:sub(1, i - 1):gsub("\r$", "")
      end
      local ok, msg, code = more(self, 64 * 1024)
      if not ok then
        if msg then return nil, msg, code end
        local b = self._buf
        self._buf = ""
        if b == "" then return nil end
        return b
      end
    end
  elseif math_type(fmt) == "integer" and fmt >= 0 then
    while #self._buf < fmt do
      local ok, msg, code = more(self, fmt - #self._buf)
      if not ok then
        if msg then return nil, msg, code end
        break
      end
    end
    local b = self._buf
    if b == "" and fmt > 0 then return nil end
    self._buf = b:sub(fmt + 1)
    return b:sub(1, fmt)
  end
  error("bad argument #1 to 'quench.http.body_reader:read' (a count, \"l\", \"L\" or \"a\" expected)", 2)
end

function Reader:lines(fmt)
  return function()
    local s, msg = self:read(fmt)
    if s == nil and msg then error("quench.http.body_reader:lines: " .. msg, 2) end
    return s
  end
end

function Response:header(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'quench.http.response:header' (string expected, got "
          .. type(name) .. ")", 2)
  end
  return self.headers[name]
end

function Response:header_all(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'quench.http.response:header_all' (string expected, got "
          .. type(name) .. ")", 2)
  end
  local vs, out = self.headers._by[name:lower()], {}
  for i, v in ipairs(vs or {}) do out[i] = v end
  return out
end

function Response:close()
  if not self._closed then
    self._closed = true
    self._x:stop()
  end
  return true
end
Response.__close = Response.close

-- Stops the transfer if request() does not return normally.
local Guard = { __close = function(g) if g.x then g.x:stop() end end }

function http.request(opts)
  local o = normalize(opts)
  local x = new_xfer(o)
  local guard <close> = setmetatable({ x = x }, Guard)
  x:start()
  local ev = step(x, o.source, HEAD)
  if ev & HEAD == 0 then                          -- done without a head: it failed
    local ok, msg, code = x:result()
    if not ok then return nil, msg, code end
  end
  local status, raw, version, url = x:head()
  guard.x = nil                                   -- the response owns the transfer now
  return setmetatable({
    status = status, headers = parse_headers(raw), version = version, url = url,
    _x = x, _source = o.source, _max_body = o.max_body,
  }, Response)
end

return http
