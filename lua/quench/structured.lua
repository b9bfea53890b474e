-- Structured concurrency on top of the C core: scopes (nurseries), task
-- sets, join_all and try_join. Loaded by luaopen_quench with the module.
local quench = ...

local DEFAULT_GRACE = 5   -- seconds children get to finish after their scope is cancelled

-- The metatable of the "multiple" error a scope raises when several
-- children failed (not Cancelled's: is_cancelled must say no).
local MULTIPLE = {
  __name = "quench.error",
  __tostring = function(e) return "multiple: " .. e.message end,
}

local function is_own_cancel(err, scope)
  return quench.is_cancelled(err) and err.reason == scope.reason_marker
end

---------------------------------------------------------------------------
-- Scopes
---------------------------------------------------------------------------

local Scope = {}
Scope.__index = Scope

--- Spawn a child task of the scope: it is cancelled with the scope's token.
function Scope:spawn(fn, ...)
  if self.closed then error("quench.scope:spawn: the scope has ended", 2) end
  if type(fn) ~= "function" then
    error("bad argument #1 to 'spawn' (function expected, got " .. type(fn) .. ")", 2)
  end
  local scope = self
  local h = self.token:spawn(function(...)
    quench.defer(function()
      scope.live = scope.live - 1
      scope.changed:notify_one()
    end)
    local r = table.pack(pcall(fn, ...))
    if not r[1] then
      scope:fail(r[2])
      error(r[2], 0)
    end
    return table.unpack(r, 2, r.n)
  end, ...)
  self.live = self.live + 1
  self.children[#self.children + 1] = h
  return h
end

-- A child (or the body) failed: keep the error, cancel everyone else.
function Scope:fail(err)
  if quench.is_cancelled(err) and self.token:is_cancelled() then return end
  self.errors[#self.errors + 1] = err
  self:cancel(self.reason_marker)
end

--- Cancel the scope: its children are cancelled (gracefully, then aborted
-- after the grace period) and its body is dropped at its current await.
function Scope:cancel(reason)
  if self.token:is_cancelled() then return end
  self.reason = reason
  self.token:cancel(reason)
end

function Scope:is_cancelled() return self.token:is_cancelled() end

-- Wait for every child: while the scope lives, as long as they take; once
-- it is cancelled, up to the grace period, then abort what is left.
local function wait_children(scope)
  while scope.live > 0 and not scope.token:is_cancelled() do
    quench.select_biased(scope.token:cancelled_op(), scope.changed:notified_op())
  end
  local deadline = quench.now() + scope.grace
  while scope.live > 0 and quench.now() < deadline do
    quench.deadline(deadline, scope.changed:notified_op())
  end
  for _, h in ipairs(scope.children) do h:abort(scope.reason) end
end

local function abort_children(scope)
  for _, h in ipairs(scope.children) do h:abort(scope.reason) end
end

--- quench.scope(fn, ...) runs fn(scope, ...) and returns only when every
-- child it spawned has ended. The first error (of a child or of fn) cancels
-- the rest and is raised from scope (several: a "multiple" error holding
-- them all). Cancelling the task running the scope cancels the children;
-- aborting it aborts them. Options: quench.scope({grace = s}, fn, ...).
function quench.scope(opts, fn, ...)
  local args
  if type(opts) == "function" then
    args = table.pack(fn, ...)
    fn, opts = opts, {}
  else
    args = table.pack(...)
  end
  if type(fn) ~= "function" then
    error("bad argument #1 to 'scope' (function expected, got " .. type(fn) .. ")", 2)
  end
  local scope = setmetatable({
    token = quench.token(), children = {}, errors = {}, live = 0,
    changed = quench.notify(), grace = opts.grace or DEFAULT_GRACE,
  }, Scope)
  -- the reason siblings see when one fails: readable, and ours by identity
  scope.reason_marker = setmetatable({ kind = "scope", message = "a sibling task failed" },
    { __tostring = function() return "scope: a sibling task failed" end })
  -- if the task running the scope is dropped, its children go with it
  local _aborter <close> = quench.guard(function() abort_children(scope) end)
  local result = table.pack(pcall(quench.select_biased, scope.token:cancelled_op(), function()
    return fn(scope, table.unpack(args, 1, args.n))
  end))
  local outer_cancel
  if not result[1] then
    local err = result[2]
    if quench.is_cancelled(err) and not is_own_cancel(err, scope) and not scope.token:is_cancelled() then
      outer_cancel = err               -- our own task was cancelled: pass it on
      scope:cancel(err.reason)
    else
      scope:fail(err)
    end
  end
  quench.shield(wait_children, scope)
  scope.closed = true
  -- every child is done: join them all (marks their failures observed), and
  -- keep the errors their drop-time cleanup raised when aborted
  quench.shield(function()
    local seen = {}
    for _, e in ipairs(scope.errors) do seen[e] = true end
    for _, h in ipairs(scope.children) do
      local ok, err = h:join()
      if not ok and not quench.is_cancelled(err) and not seen[err] then
        seen[err] = true
        scope.errors[#scope.errors + 1] = err
      end
    end
  end)
  if #scope.errors == 1 then error(scope.errors[1], 0) end
  if #scope.errors > 1 then
    error(setmetatable({ kind = "multiple", error = scope.errors[1], errors = scope.errors,
      message = #scope.errors .. " tasks failed; the first: " .. tostring(scope.errors[1]) },
      MULTIPLE), 0)
  end
  if outer_cancel then error(outer_cancel, 0) end
  if result[1] and result[2] == 2 then
    return table.unpack(result, 3, result.n)
  end
end

---------------------------------------------------------------------------
-- Task sets
---------------------------------------------------------------------------

local TaskSet = {}
TaskSet.__index = TaskSet

--- Spawn a task into the set.
function TaskSet:spawn(fn, ...)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'spawn' (function expected, got " .. type(fn) .. ")", 2)
  end
  local set = self
  local h = quench.spawn(fn, ...)
  h:defer(function()        -- runs however it ends, even never started; needs no core memory
    set.finished[#set.finished + 1] = h
    set.wake:notify_one()
  end)
  self.tasks[h] = true
  self.count = self.count + 1
  return h
end

function TaskSet:len() return self.count end

--- Wait for the next task to end, in completion order: handle, ok, results...
-- nil when the set is empty. Cancel-safe: a dropped join_next loses nothing.
function TaskSet:join_next()
  if self.count == 0 then return nil end
  while self.finished[1] == nil do self.wake:notified() end
  local h = table.remove(self.finished, 1)
  self.tasks[h] = nil
  self.count = self.count - 1
  return h, h:join()
end

--- Abort every task still in the set (their cleanup runs before it returns).
function TaskSet:abort_all(reason)
  for h in pairs(self.tasks) do h:abort(reason) end
end

TaskSet.__close = function(self) self:abort_all() end

--- quench.task_set(): a JoinSet; `<close>` aborts what is left.
function quench.task_set()
  return setmetatable({ tasks = {}, count = 0, finished = {}, wake = quench.notify() }, TaskSet)
end

---------------------------------------------------------------------------
-- join_all, try_join
---------------------------------------------------------------------------

local function start_all(fname, ...)
  local hs = {}
  for i = 1, select("#", ...) do
    local f = select(i, ...)
    if type(f) == "function" then
      hs[i] = quench.spawn(f)
    elseif tostring(f):match("^quench%.task") then
      hs[i] = f
    else
      error("bad argument #" .. i .. " to '" .. fname .. "' (function or task expected, got "
        .. type(f) .. ")", 3)
    end
  end
  return hs
end

--- quench.join_all(...): functions (run as tasks) or task handles; waits for
-- all and returns one table.pack(ok, results...) per argument.
function quench.join_all(...)
  local hs = start_all("join_all", ...)
  local _aborter <close> = quench.guard(function() for _, h in ipairs(hs) do h:abort() end end)
  local out = {}
  for i, h in ipairs(hs) do out[i] = table.pack(h:join()) end
  return out
end

--- quench.try_join(...): like join_all, but the first failure aborts the
-- others: true, {table.pack(results...) per argument} or false, err.
function quench.try_join(...)
  local hs = start_all("try_join", ...)
  local _aborter <close> = quench.guard(function() for _, h in ipairs(hs) do h:abort() end end)
  local out, left = {}, #hs
  while left > 0 do
    local ops = {}
    local map = {}
    for i, h in ipairs(hs) do
      if not out[i] then ops[#ops + 1] = h:join_op(); map[#ops] = i end
    end
    local r = table.pack(quench.select(table.unpack(ops)))
    local i = map[r[1]]
    if not r[2] then return false, r[3] end
    out[i] = table.pack(table.unpack(r, 3, r.n))
    left = left - 1
  end
  return true, out
end
