-- quench.dump: the live tasks as a tree (by the task that spawned each),
-- with state, name, age, what each waits for, where it was spawned (with
-- quench.record_spawn_sites(true)) and, for a suspended task, its
-- traceback. quench.dump_on_signal runs it on each delivery of a signal.
local quench = ...

local function indent_lines(text, pad)
  return (text:gsub("\n", "\n" .. pad))
end

-- One line for a task entry of quench.tasks().
local function describe(t)
  local parts = { "#" .. t.id }
  if t.name then parts[#parts + 1] = string.format("%q", t.name) end
  parts[#parts + 1] = t.state
  if t.waiting then parts[#parts + 1] = "(" .. t.waiting .. ")" end
  parts[#parts + 1] = string.format("age %.3fs", t.age)
  if t.site then parts[#parts + 1] = "spawned at " .. t.site end
  if t.defined then parts[#parts + 1] = "runs " .. t.defined end
  return table.concat(parts, " ")
end

local DUMP_OPTS = { file = true, tracebacks = true }

--- quench.dump([opts]): the task tree as text; opts.file (default
-- io.stderr; false: write nothing), opts.tracebacks (default true).
function quench.dump(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error("bad argument #1 to 'dump' (table expected, got " .. type(opts) .. ")", 2)
  end
  for k in pairs(opts) do
    if not DUMP_OPTS[k] then
      error("bad argument #1 to 'dump' (unknown option '" .. tostring(k) .. "')", 2)
    end
  end
  local file = opts.file
  if file == nil then file = io.stderr end
  local tracebacks = opts.tracebacks ~= false
  local list = quench.tasks()
  local by_id, kids, roots = {}, {}, {}
  for _, t in ipairs(list) do by_id[t.id] = t end
  for _, t in ipairs(list) do
    if t.parent and by_id[t.parent] then
      local k = kids[t.parent] or {}
      kids[t.parent] = k
      k[#k + 1] = t
    else
      roots[#roots + 1] = t                 -- spawned by a task that has ended, or the main task
    end
  end
  local out = { string.format("quench: %d live task%s at %.3fs", #list, #list == 1 and "" or "s",
    quench.now()) }
  local function walk(t, depth)
    local pad = string.rep("  ", depth)
    local line = pad .. describe(t)
    if t.parent and not by_id[t.parent] then line = line .. " (parent #" .. t.parent .. " ended)" end
    out[#out + 1] = line
    if tracebacks and t.state == "suspended" then
      local tb = t.handle:traceback()
      if tb then out[#out + 1] = pad .. "    " .. indent_lines(tb, pad .. "    ") end
    end
    for _, c in ipairs(kids[t.id] or {}) do walk(c, depth + 1) end
  end
  for _, t in ipairs(roots) do walk(t, 1) end
  local text = table.concat(out, "\n") .. "\n"
  if file then
    file:write(text)
    file:flush()
  end
  return text
end

--- quench.dump_on_signal([name [, opts]]): a detached task that dumps the
-- tree on each delivery of the signal (default "SIGUSR1"); returns its
-- handle (abort it to stop).
function quench.dump_on_signal(name, opts)
  name = name or "SIGUSR1"
  if type(name) ~= "string" then
    error("bad argument #1 to 'dump_on_signal' (string expected, got " .. type(name) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'dump_on_signal' (table expected, got " .. type(opts) .. ")", 2)
  end
  quench.signal_op(name)                  -- checks the name here, in the caller
  local h = quench.spawn(function()
    while true do
      quench.signal(name)
      quench.dump(opts)
    end
  end)
  h:name("quench.dump_on_signal " .. name)
  h:detach()
  return h
end
