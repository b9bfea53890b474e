-- quench.test with checks: the busted body it returns fails, naming them,
-- when tasks are still alive as the test function returns, or when a task
-- failed and nobody observed its error. Wraps the C quench.test (fresh
-- runtime, virtual clock and seed 1 unless opts says otherwise), whose
-- behaviour it keeps. Loaded by luaopen_quench with the module.
local quench = ...
if type(quench) ~= "table" then   -- require "quench.testing": the module already has it
  return require "quench"
end

local c_test = quench.test

-- Options this wrapper reads; they are not passed on to quench.run.
local OWN_OPTS = { allow_alive = true }
-- Every option quench.test takes: its own and quench.run's.
local KNOWN_OPTS = { allow_alive = true, clock = true, seed = true, on_task_error = true,
  on_warning = true, slow_task = true, fail_alloc = true }

-- "file:line: " of the test function, so a failure quench.test reports
-- points at the spec, not at this file (busted prefixes a message that has
-- no position with the place it was raised from: here).
local function where(fn)
  local info = debug.getinfo(fn, "S")
  return info.short_src .. ":" .. info.linedefined .. ": "
end

-- Whether an error value already says where it was raised.
local function has_position(err)
  return type(err) == "string" and err:match("^[^\n]-:%d+: ") ~= nil
end

-- Where a positionless string error was raised: the first Lua frame above
-- `error`, as "file:line: " (nil if it has a position, or is not a string).
local function raised_at(err)
  if type(err) ~= "string" or has_position(err) then return nil end
  for level = 3, 60 do
    local info = debug.getinfo(level, "Sl")
    if info == nil then break end
    if info.what ~= "C" and info.currentline and info.currentline > 0 then
      return info.short_src .. ":" .. info.currentline .. ": "
    end
  end
  return nil
end

local function describe_task(t)
  local s = "task #" .. tostring(t.id)
  if t.name ~= nil then s = s .. " " .. string.format("%q", tostring(t.name)) end
  s = s .. " (" .. tostring(t.state)
  if t.waiting ~= nil then s = s .. ", waiting: " .. tostring(t.waiting) end
  return s .. ")"
end

local function describe_error(r)
  local s = "task #" .. tostring(r.id)
  if r.name ~= nil then s = s .. " " .. string.format("%q", tostring(r.name)) end
  local ok, text = pcall(tostring, r.err)
  if not ok then text = "(" .. type(r.err) .. " error whose __tostring failed)" end
  s = s .. ": " .. text
  local tb = r.traceback
  if type(tb) == "string" and tb ~= "" then
    if tb:sub(1, #text + 1) == text .. "\n" then tb = tb:sub(#text + 2) end   -- no message twice
    s = s .. "\n    " .. tb:gsub("\n", "\n    ")
  end
  return s
end

local function plural(n, word)
  return n .. " " .. word .. (n == 1 and "" or "s")
end

-- The message naming everything that went wrong, or nil.
local function failure_message(alive, errors)
  local parts = {}
  if alive and #alive > 0 then
    local lines = { "quench.test: " .. plural(#alive, "task") .. " still alive when the test "
      .. "function returned (join, abort or scope them; opts.allow_alive = true to allow):" }
    for _, t in ipairs(alive) do lines[#lines + 1] = "  " .. describe_task(t) end
    parts[#parts + 1] = table.concat(lines, "\n")
  end
  if #errors > 0 then
    local lines = { "quench.test: " .. plural(#errors, "task error") .. " nobody observed "
      .. "(join the task to see its error, or pass opts.on_task_error):" }
    for _, r in ipairs(errors) do lines[#lines + 1] = "  " .. describe_error(r) end
    parts[#parts + 1] = table.concat(lines, "\n")
  end
  if #parts == 0 then return nil end
  return table.concat(parts, "\n")
end

--- quench.test(fn [, opts]): a busted body running fn in a fresh runtime
-- (virtual clock and seed 1 by default). It fails when tasks other than
-- fn's own are alive as fn returns (unless opts.allow_alive), and when a
-- task error was never observed (unless opts.on_task_error is given: it
-- then gets the reports, as in quench.run).
function quench.test(fn, opts)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'test' (function expected, got " .. type(fn) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'test' (table expected, got " .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if not KNOWN_OPTS[k] then
      error("bad argument #2 to 'test' (unknown option '" .. tostring(k) .. "')", 2)
    end
  end
  local at = where(fn)
  return function()
    local run_opts = {}
    for k, v in pairs(opts) do
      if not OWN_OPTS[k] then run_opts[k] = v end
    end
    local errors = {}
    if run_opts.on_task_error == nil then
      run_opts.on_task_error = function(err, traceback, h)
        errors[#errors + 1] = { err = err, traceback = traceback, id = h:id(), name = h:name() }
      end
    end
    local alive
    local from                -- where fn raised a string error that has no position
    local function body()
      local r = table.pack(xpcall(fn, function(err)
        from = raised_at(err)
        return err
      end))
      if not r[1] then error(r[2], 0) end
      if not opts.allow_alive then
        local me = quench.current()
        alive = {}
        for _, t in ipairs(quench.tasks()) do
          if t.handle ~= me then alive[#alive + 1] = t end
        end
      end
      return table.unpack(r, 2, r.n)
    end
    local r = table.pack(pcall(c_test(body, run_opts)))
    if not r[1] then
      -- fn's own error comes first; what was collected is not lost
      local msg = failure_message(nil, errors)
      if msg then io.stderr:write(msg, "\n") end
      local err = r[2]
      if from and type(err) == "string" and not has_position(err) then err = from .. err end
      error(err, 0)
    end
    local msg = failure_message(alive, errors)
    if msg then error(at .. msg, 0) end
    return table.unpack(r, 2, r.n)
  end
end
