-- module quench.ngx_re
-- quench.ngx_re: OpenResty's ngx.re (match, find, gmatch, sub, gsub) on
-- PCRE2, through lrexlib's rex_pcre2 (Debian's lua-rex-pcre2): the same
-- regex language as OpenResty's (PCRE), its options and its results
-- (captures in a table from 0, `false` for one that did not take part;
-- `$0`, `$1`, `${name}`, `$$` in a replacement template). quench.ngx makes
-- it `ngx.re`, loaded at first use. Guide: docs/openresty.md.
-- Embedded in quench.so (its first line makes luaopen_quench register it
-- in package.preload, compiled on first require), and installed as a file.
local ok_rex, rex = pcall(require, "rex_pcre2")

local type, tostring, error, pairs = type, tostring, error, pairs
local sub, byte, find, fmt = string.sub, string.byte, string.find, string.format
local concat = table.concat

local M = {}

local FLAGS = ok_rex and rex.flags() or {}

-- OpenResty's option letters -> PCRE2 compile flags. "j" (JIT), "o"
-- (compile once: every regex is cached here) and "D" change nothing the
-- caller sees; "d" (DFA) is refused, it returns other captures.
local function compile_flags(fname, opts)
  local cf = 0
  if opts == nil or opts == "" then return cf end
  if type(opts) ~= "string" then
    error(fmt("bad argument #3 to '%s' (options string expected, got %s)", fname, type(opts)), 3)
  end
  for i = 1, #opts do
    local c = sub(opts, i, i)
    if c == "i" then cf = cf | FLAGS.CASELESS
    elseif c == "m" then cf = cf | FLAGS.MULTILINE
    elseif c == "s" then cf = cf | FLAGS.DOTALL
    elseif c == "x" then cf = cf | FLAGS.EXTENDED
    elseif c == "u" or c == "U" then cf = cf | FLAGS.UTF
    elseif c == "a" then cf = cf | FLAGS.ANCHORED
    elseif c == "D" then cf = cf | FLAGS.DUPNAMES
    elseif c == "j" or c == "o" or c == "J" then -- luacheck: ignore 542
    else
      error(fmt("bad argument #3 to '%s' (unknown flag \"%s\" (flags \"%s\"))", fname, c, opts), 3)
    end
  end
  return cf
end

local cache, cached = {}, 0
local CACHE_MAX = 1024   -- OpenResty's lua_regex_cache_max_entries

-- The compiled regex, or nil, "failed to compile regex ...".
local function compile(fname, regex, opts)
  if not ok_rex then
    error(fname .. ": ngx.re needs lrexlib's rex_pcre2 (Debian's lua-rex-pcre2): " .. tostring(rex), 3)
  end
  if type(regex) ~= "string" then
    error(fmt("bad argument #2 to '%s' (regex string expected, got %s)", fname, type(regex)), 3)
  end
  local cf = compile_flags(fname, opts)
  local key = regex .. "\0" .. cf
  local r = cache[key]
  if r then return r end
  local ok, res = pcall(rex.new, regex, cf)
  if not ok then return nil, fmt("failed to compile regex \"%s\": %s", regex, tostring(res)) end
  if cached >= CACHE_MAX then cache, cached = {}, 0 end
  cache[key], cached = res, cached + 1
  return res
end

local function check_subject(fname, s)
  if type(s) == "number" then return tostring(s) end
  if type(s) ~= "string" then
    error(fmt("bad argument #1 to '%s' (string expected, got %s)", fname, type(s)), 3)
  end
  return s
end

-- One match from `init`: from, to, the captures table (m[0], m[1]..., and
-- the named ones), or nil.
local function exec(r, s, init)
  local from, to, caps = r:tfind(s, init)
  if not from then return nil end
  local m = { [0] = sub(s, from, to) }
  for k, v in pairs(caps) do m[k] = v end
  return from, to, m
end

local function start_of(fname, ctx)
  if ctx == nil then return 1 end
  if type(ctx) ~= "table" then
    error(fmt("bad argument #4 to '%s' (ctx table expected, got %s)", fname, type(ctx)), 3)
  end
  return ctx.pos or 1
end

--- match(subject, regex, options?, ctx?, res?): the captures, or nil
-- (nil, err for a bad regex). ctx.pos: where to start; set after the match.
function M.match(subject, regex, opts, ctx, res)
  subject = check_subject("match", subject)
  local r, err = compile("match", regex, opts)
  if not r then return nil, err end
  local init = start_of("match", ctx)
  if init > #subject + 1 then return nil end
  local _, to, m = exec(r, subject, init)
  if not m then return nil end
  if ctx then ctx.pos = to + 1 end
  if res ~= nil then
    for k in pairs(res) do res[k] = nil end
    for k, v in pairs(m) do res[k] = v end
    return res
  end
  return m
end

--- find(subject, regex, options?, ctx?, nth?): from, to (of capture nth,
-- 0 the whole match), or nil.
function M.find(subject, regex, opts, ctx, nth)
  subject = check_subject("find", subject)
  local r, err = compile("find", regex, opts)
  if not r then return nil, nil, err end
  local init = start_of("find", ctx)
  if init > #subject + 1 then return nil end
  local from, to, m = exec(r, subject, init)
  if not from then return nil end
  if ctx then ctx.pos = to + 1 end
  nth = nth or 0
  if nth == 0 then return from, to end
  local c = m[nth]
  if not c then return nil end
  -- the capture's place: search it from the match's start
  local _, _, offsets = r:exec(subject, init)
  local a, b = offsets[2 * nth - 1], offsets[2 * nth]
  if not a then return nil end
  return a, b
end

-- Iterate over the matches from init, as gsub and gmatch walk them: an
-- empty match moves on one byte.
local function matches(r, s)
  local pos = 1
  local n = #s
  return function()
    if pos > n + 1 then return nil end
    local from, to, m = exec(r, s, pos)
    if not from then
      pos = n + 2
      return nil
    end
    if to < from then pos = from + 1 else pos = to + 1 end
    return from, to, m
  end
end

--- gmatch(subject, regex, options?): an iterator of captures tables.
function M.gmatch(subject, regex, opts)
  subject = check_subject("gmatch", subject)
  local r, err = compile("gmatch", regex, opts)
  if not r then return nil, err end
  local it = matches(r, subject)
  return function()
    local _, _, m = it()
    return m
  end
end

-- A replacement template ("$1-${name}-$$") as a function of the captures.
local function template(fname, repl)
  local parts, i, n = {}, 1, #repl
  while i <= n do
    local d = find(repl, "$", i, true)
    if not d then
      parts[#parts + 1] = sub(repl, i)
      break
    end
    if d > i then parts[#parts + 1] = sub(repl, i, d - 1) end
    local c = byte(repl, d + 1)
    if c == 36 then                                   -- "$$"
      parts[#parts + 1] = "$"
      i = d + 2
    elseif c == 123 then                              -- "${name}"
      local name, e = repl:match("^([%w_]+)}()", d + 2)
      if not name then
        return nil, fmt("failed to compile the replacement template: bad variable at %d", d)
      end
      parts[#parts + 1] = { tonumber(name) or name }
      i = e
    elseif c and c >= 48 and c <= 57 then             -- "$1"
      local num, e = repl:match("^(%d+)()", d + 1)
      parts[#parts + 1] = { tonumber(num) }
      i = e
    else
      return nil, fmt("%s: invalid replacement template: lone \"$\" at %d", fname, d)
    end
  end
  return function(m)
    local out = {}
    for k, p in ipairs(parts) do
      if type(p) == "table" then out[k] = m[p[1]] or "" else out[k] = p end
    end
    return concat(out)
  end
end

local function substitute(fname, subject, regex, repl, opts, all)
  subject = check_subject(fname, subject)
  local fn
  if type(repl) == "function" then
    fn = function(m)
      local v = repl(m)
      if type(v) == "number" then return tostring(v) end
      if type(v) ~= "string" then
        error(fmt("%s: the replacement function returned %s, not a string", fname, type(v)), 0)
      end
      return v
    end
  elseif type(repl) == "string" or type(repl) == "number" then
    local err
    fn, err = template(fname, tostring(repl))
    if not fn then return nil, nil, err end
  else
    error(fmt("bad argument #3 to '%s' (string or function expected, got %s)", fname, type(repl)), 3)
  end
  local r, err = compile(fname, regex, opts)
  if not r then return nil, nil, err end
  local out, last, count = {}, 1, 0
  for from, to, m in matches(r, subject) do
    out[#out + 1] = sub(subject, last, from - 1)
    out[#out + 1] = fn(m)
    last = to + 1
    count = count + 1
    if not all then break end
  end
  if count == 0 then return subject, 0 end
  out[#out + 1] = sub(subject, last)
  return concat(out), count
end

--- sub(subject, regex, replace, options?): the first match replaced:
-- newstr, n (0 or 1); or nil, nil, err.
function M.sub(subject, regex, repl, opts)
  return substitute("sub", subject, regex, repl, opts, false)
end

--- gsub(subject, regex, replace, options?): every match replaced.
function M.gsub(subject, regex, repl, opts)
  return substitute("gsub", subject, regex, repl, opts, true)
end

return M
