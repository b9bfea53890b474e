-- Structured concurrency on top of the C core: scopes (nurseries), task
-- sets, join_all and try_join. Loaded by luaopen_quench with the module and
-- the internals of lua/task.c (outcome: how an ended task ended, without
-- waiting; observe: mark its failure observed; task_of: whether a value is a
-- task of this run or of another).
--
-- Memory: a scope or set holds a child only while someone may still need it.
-- A scope forgets a child once it has ended well (or as cancelled) and its
-- outcome is read; a failed one is kept until the scope raises. A set
-- forgets a task once join_next has returned it, or at once when the set
-- detaches its tasks. So a scope or set around an accept loop costs the
-- connections alive, not every connection it ever served.
local quench, internal = ...

local DEFAULT_GRACE = 5   -- seconds children get to finish after their scope is cancelled

-- The metatable of the "multiple" error a scope raises when several
-- children failed (not Cancelled's: is_cancelled must say no).
local MULTIPLE = {
  __name = "quench.error",
  __tostring = function(e) return "multiple: " .. e.message end,
}

-- tostring that never raises: an error value's __tostring may itself fail,
-- and the errors it describes must not be lost because of it.
local function describe(v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then return s end
  return "(" .. type(v) .. " error whose __tostring failed)"
end

local function is_own_cancel(err, scope)
  return quench.is_cancelled(err) and rawequal(err.reason, scope.reason_marker)
end

-- Raise "bad argument #1 to 'name' (T expected, got ...)" unless self is an
-- object of class `cls`: names the missing self of a call made with a dot.
local function check_self(self, cls, tname, name)
  if getmetatable(self) ~= cls then
    error("bad argument #1 to '" .. name .. "' (" .. tname .. " expected, got " .. type(self)
      .. "; call it with a colon: x:" .. name .. "(...))", 3)
  end
end

local function check_fn(fn, fname)
  if type(fn) ~= "function" then
    error("bad argument #1 to '" .. fname .. "' (function expected, got " .. type(fn) .. ")", 3)
  end
end

---------------------------------------------------------------------------
-- Scopes
---------------------------------------------------------------------------

local Scope = {}
Scope.__index = Scope

-- Keep an error of the scope. errors has holes if one is nil: n counts.
local function add_error(scope, err)
  local errs = scope.errors
  errs.n = errs.n + 1
  errs[errs.n] = err
end

-- Collect the children that have ended since the last call. One that
-- ended well or as cancelled is forgotten. One that failed is kept (a scope
-- with a failed child is on its way out, so these are few) until the scope
-- raises, which marks them observed: if the scope is dropped instead, their
-- failures are reported as nobody's, not lost. An error the child's own
-- wrapper did not already give the scope (one raised by a defer after the
-- child returned, or by the drop-time cleanup of an aborted child) fails the
-- scope. A child whose hand-in ran but whose outcome is not settled yet (its
-- last cleanups are still running) waits for the next call.
local child_failed

local function sweep(scope)
  local hs, raised = scope.ended, scope.ended_raised
  local n = #hs
  if n == 0 then return end
  local keep, keep_raised = {}, {}
  scope.ended, scope.ended_raised = keep, keep_raised
  for i = 1, n do
    local h = hs[i]
    local outcome, err = internal.outcome(h)
    if outcome == nil then
      keep[#keep + 1] = h
      keep_raised[#keep] = raised[i]
    else
      scope.children[h] = nil
      if outcome == "failed" then
        scope.failed[#scope.failed + 1] = h
        if not raised[i] and not quench.is_cancelled(err) then
          if rawequal(h, scope.body) then scope:fail(err) else child_failed(scope, err, h) end
        end
      end
    end
  end
end

-- A child failed with err: a supervisor keeps the error (or gives it to
-- opts.on_failure) and lets the others run; any other scope cancels them.
function child_failed(scope, err, h)
  if not scope.supervise then return scope:fail(err) end
  if quench.is_cancelled(err) and scope.token:is_cancelled() then return end
  if scope.on_failure then
    local ok, herr = pcall(scope.on_failure, err, h)
    if not ok then scope:fail(herr) end   -- a handler that fails fails the scope
    return
  end
  add_error(scope, err)
end

local function spawn_child(scope, is_body, fn, ...)
  sweep(scope)
  local raised, h = false, nil
  h = scope.token:spawn(function(...)
    local r = table.pack(pcall(fn, ...))
    if not r[1] then
      raised = true
      if is_body then scope:fail(r[2]) else child_failed(scope, r[2], h) end
      error(r[2], 0)
    end
    return table.unpack(r, 2, r.n)
  end, ...)
  -- the hand-in runs on every outcome, after the child's own defers, also
  -- for a child aborted before it ever ran
  h:defer(function()
    scope.live = scope.live - 1
    sweep(scope)                       -- the children that ended before this one
    local e = scope.ended
    e[#e + 1] = h
    scope.ended_raised[#e] = raised
    scope.changed:notify_one()
  end)
  scope.seq = scope.seq + 1
  scope.children[h] = scope.seq
  scope.live = scope.live + 1
  return h
end

--- Spawn a child task of the scope: it is cancelled with the scope's token.
function Scope:spawn(fn, ...)
  check_self(self, Scope, "quench.scope", "spawn")
  if self.closed then error("quench.scope:spawn: the scope has ended", 2) end
  check_fn(fn, "spawn")
  return spawn_child(self, false, fn, ...)
end

-- A child (or the body) failed: keep the error, cancel everyone else.
function Scope:fail(err)
  check_self(self, Scope, "quench.scope", "fail")
  if quench.is_cancelled(err) and self.token:is_cancelled() then return end
  add_error(self, err)
  self:cancel(self.reason_marker)
end

--- Cancel the scope: its children are cancelled (gracefully, then aborted
-- after the grace period) and its body is dropped at its current await.
function Scope:cancel(reason)
  check_self(self, Scope, "quench.scope", "cancel")
  if self.token:is_cancelled() then return end
  self.reason = reason
  self.token:cancel(reason)
end

function Scope:is_cancelled()
  check_self(self, Scope, "quench.scope", "is_cancelled")
  return self.token:is_cancelled()
end

--- The scope's deadline (quench.now() time), math.huge if it has none.
function Scope:deadline()
  check_self(self, Scope, "quench.scope", "deadline")
  return self.deadline_at or math.huge
end

local function check_time(v, what, fname, argn)
  if math.type(v) == nil or v ~= v then
    error("bad argument #" .. argn .. " to '" .. fname .. "' (" .. what .. " must be a number, got "
      .. (type(v) == "number" and tostring(v) or type(v)) .. ")", 3)
  end
end

--- Move the deadline of a scope made with one (earlier or later); at the
-- new deadline the scope is cancelled as at the first.
function Scope:set_deadline(t)
  check_self(self, Scope, "quench.scope", "set_deadline")
  check_time(t, "the deadline", "set_deadline", 1)
  if not self.deadline_at then
    error("quench.scope:set_deadline: the scope has no deadline (make it with "
      .. "opts.deadline or opts.timeout; math.huge for none yet)", 2)
  end
  self.deadline_at = t
  self.changed:notify_one()
end

--- Whether the scope was cancelled by its deadline.
function Scope:timed_out()
  check_self(self, Scope, "quench.scope", "timed_out")
  return self.expired == true
end

-- The children not yet collected, in spawn order.
local function children_in_order(scope)
  local list = {}
  for h in pairs(scope.children) do list[#list + 1] = h end
  table.sort(list, function(a, b) return scope.children[a] < scope.children[b] end)
  return list
end

local function abort_children(scope)
  for _, h in ipairs(children_in_order(scope)) do h:abort(scope.reason) end
end

-- Wait for every child while the scope lives, as long as they take. Not
-- shielded: a cancel of the task running the scope arrives here, and is
-- returned (the caller passes it on to the children).
local function wait_live(scope)
  while scope.live > 0 and not scope.token:is_cancelled() do
    local ok, err
    local d = scope.deadline_at
    if d then
      local now = quench.now()
      if now >= d then                 -- the deadline: cancel gracefully
        scope.expired = true
        scope:cancel(quench.timeout_error())
        return
      end
      ok, err = pcall(quench.select_biased, scope.token:cancelled_op(),
        scope.changed:notified_op(), quench.sleep_op(d - now))
    else
      ok, err = pcall(quench.select_biased, scope.token:cancelled_op(),
        scope.changed:notified_op())
    end
    if not ok then
      if quench.is_cancelled(err) then return err end
      error(err, 0)
    end
    sweep(scope)
  end
end

-- Once cancelled: wait up to the grace period, then abort what is left.
-- Runs shielded.
local function wait_grace(scope)
  local deadline = quench.now() + scope.grace
  while scope.live > 0 and quench.now() < deadline do
    quench.deadline(deadline, scope.changed:notified_op())
    sweep(scope)
  end
  abort_children(scope)
end

local function check_grace(g)
  if g == nil then return DEFAULT_GRACE end
  if math.type(g) == nil or g ~= g or g < 0 then
    error("bad argument #1 to 'scope' (opts.grace must be a number of seconds >= 0, got "
      .. (type(g) == "number" and tostring(g) or type(g)) .. ")", 3)
  end
  return g
end

local SCOPE_OPTS = { grace = true, timeout = true, deadline = true, supervise = true,
  on_failure = true }

-- The context key under which a scope with a deadline is found by the code
-- it runs (quench.current_deadline).
local DEADLINE = quench.context.key("scope deadline")

-- Read the deadline options: an absolute time or nil.
local function check_deadline(opts)
  local t, d = opts.timeout, opts.deadline
  if t ~= nil and d ~= nil then
    error("bad argument #1 to 'scope' (give opts.timeout or opts.deadline, not both)", 3)
  end
  if t ~= nil then
    if math.type(t) == nil or t ~= t or t < 0 then
      error("bad argument #1 to 'scope' (opts.timeout must be a number of seconds >= 0, got "
        .. (type(t) == "number" and tostring(t) or type(t)) .. ")", 3)
    end
    return quench.now() + t
  end
  if d ~= nil and (math.type(d) == nil or d ~= d) then
    error("bad argument #1 to 'scope' (opts.deadline must be a number (a quench.now() time), got "
      .. (type(d) == "number" and tostring(d) or type(d)) .. ")", 3)
  end
  return d
end

local function check_supervise(opts)
  local sv, h = opts.supervise, opts.on_failure
  if sv ~= nil and type(sv) ~= "boolean" then
    error("bad argument #1 to 'scope' (opts.supervise must be a boolean, got " .. type(sv) .. ")", 3)
  end
  if h ~= nil and type(h) ~= "function" then
    error("bad argument #1 to 'scope' (opts.on_failure must be a function, got " .. type(h) .. ")", 3)
  end
  if h ~= nil and not sv then
    error("bad argument #1 to 'scope' (opts.on_failure needs opts.supervise = true)", 3)
  end
  return sv == true, h
end

local branch_deadline = internal.branch_deadline

--- quench.current_deadline(): the earliest deadline in force where it is
-- called: of the quench.timeout and quench.deadline branches the running
-- code is inside (found in C), and of the scopes it is inside, each scope
-- also bounded by the timeouts around the place it was opened (its `bound`),
-- math.huge if none.
function quench.current_deadline()
  local d = branch_deadline()
  local s = quench.context.get(DEADLINE)
  while s do
    -- a task spawned inside may outlive the scope: an ended scope bounds nothing
    if not s.closed then
      local own = s.deadline_at or math.huge
      if own < d then d = own end
      if s.bound < d then d = s.bound end
    end
    s = s.outer_deadline
  end
  return d
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
  elseif type(opts) == "table" then
    for k in pairs(opts) do
      if not SCOPE_OPTS[k] then
        error("bad argument #1 to 'scope' (unknown option '" .. describe(k) .. "')", 2)
      end
    end
    if type(fn) ~= "function" then
      error("bad argument #2 to 'scope' (function expected, got " .. type(fn) .. ")", 2)
    end
    args = table.pack(...)
  else
    error("bad argument #1 to 'scope' (function or options table expected, got "
      .. type(opts) .. ")", 2)
  end
  local supervise, on_failure = check_supervise(opts)
  local scope = setmetatable({
    token = quench.token(), children = {}, seq = 0, ended = {}, ended_raised = {}, failed = {},
    errors = { n = 0 }, live = 0, changed = quench.notify(), grace = check_grace(opts.grace),
    deadline_at = check_deadline(opts), supervise = supervise, on_failure = on_failure,
  }, Scope)
  -- the reason siblings see when one fails: readable, and ours by identity
  scope.reason_marker = setmetatable({ kind = "scope", message = "a sibling task failed" },
    { __tostring = function() return "scope: a sibling task failed" end })
  -- if the task running the scope is dropped, its children go with it
  local _aborter <close> = quench.guard(function() abort_children(scope) end)
  -- the timeouts around the scope bound its children too: they are
  -- dropped with it (quench.current_deadline)
  scope.bound = branch_deadline()
  local result
  if scope.deadline_at then
    -- the body runs as the first child, so that the deadline cancels it
    -- gracefully too: a scope inside it gets its grace
    scope.outer_deadline = quench.context.get(DEADLINE)
    scope.body = spawn_child(scope, true, quench.context.with, DEADLINE, scope, fn, scope,
      table.unpack(args, 1, args.n))
    result = { true, n = 1 }
  else
    local body = fn
    if scope.bound < math.huge then
      -- a bound from a timeout outside: the children inherit it through
      -- the context, as they inherit a scope deadline
      scope.outer_deadline = quench.context.get(DEADLINE)
      body = function(...) return quench.context.with(DEADLINE, scope, fn, ...) end
    end
    result = table.pack(pcall(quench.select_biased, scope.token:cancelled_op(), function()
      return body(scope, table.unpack(args, 1, args.n))
    end))
  end
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
  if not scope.token:is_cancelled() then
    local err = wait_live(scope)
    if err ~= nil then                 -- cancelled while waiting for the children
      outer_cancel = err
      scope:cancel(err.reason)
    end
  end
  quench.shield(wait_grace, scope)
  scope.closed = true
  sweep(scope)                         -- every child is done: collect the last ones
  for _, h in ipairs(scope.failed) do internal.observe(h) end   -- raised below
  local errs = scope.errors
  if errs.n == 1 then error(errs[1], 0) end
  if errs.n > 1 then
    local list = table.move(errs, 1, errs.n, 1, {})
    error(setmetatable({ kind = "multiple", error = errs[1], errors = list, n = errs.n,
      message = errs.n .. " tasks failed; the first: " .. describe(errs[1]) },
      MULTIPLE), 0)
  end
  if outer_cancel then error(outer_cancel, 0) end
  if scope.expired then error(quench.timeout_error(), 0) end
  if scope.body then
    local r = table.pack(scope.body:join())   -- done: it was a child
    if r[1] then return table.unpack(r, 2, r.n) end
    return
  end
  if result[1] and result[2] == 2 then
    return table.unpack(result, 3, result.n)
  end
end

--- quench.supervisor(fn, ...): quench.scope({supervise = true}, fn, ...).
function quench.supervisor(fn, ...)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'supervisor' (function expected, got " .. type(fn) .. ")", 2)
  end
  return quench.scope({ supervise = true }, fn, ...)
end

---------------------------------------------------------------------------
-- Task sets
---------------------------------------------------------------------------

local TaskSet = {}
TaskSet.__index = TaskSet

--- Spawn a task into the set.
function TaskSet:spawn(fn, ...)
  check_self(self, TaskSet, "quench.task_set", "spawn")
  check_fn(fn, "spawn")
  local set = self
  local h = quench.spawn(fn, ...)
  if self.detach then
    h:detach()                 -- a failure nobody can take is reported at once
    h:defer(function()         -- runs however it ends, even never started
      set.tasks[h] = nil
      set.count = set.count - 1
      set.wake:notify_all()
    end)
  else
    h:defer(function()         -- runs however it ends, even never started; needs no core memory
      set.tail = set.tail + 1
      set.finished[set.tail] = h
      set.wake:notify_one()
    end)
  end
  self.tasks[h] = true
  self.count = self.count + 1
  return h
end

function TaskSet:len()
  check_self(self, TaskSet, "quench.task_set", "len")
  return self.count
end

--- Wait for the next task to end, in completion order: handle, ok, results...
-- nil when the set is empty. Cancel-safe: a dropped join_next loses nothing.
-- A detaching set keeps no results: join_next waits until it is empty.
function TaskSet:join_next()
  check_self(self, TaskSet, "quench.task_set", "join_next")
  if self.detach then
    while self.count > 0 do self.wake:notified() end
    return nil
  end
  if self.count == 0 then return nil end
  while self.head > self.tail do self.wake:notified() end
  local h = self.finished[self.head]
  -- the task's last cleanups may still be running: its hand-in comes last,
  -- and join (no wait once it is done) gives its outcome
  self.finished[self.head] = nil
  self.head = self.head + 1
  self.tasks[h] = nil
  self.count = self.count - 1
  return h, h:join()
end

--- Abort every task still in the set (their cleanup runs before it returns).
function TaskSet:abort_all(reason)
  check_self(self, TaskSet, "quench.task_set", "abort_all")
  local list = {}
  for h in pairs(self.tasks) do list[#list + 1] = h end
  for _, h in ipairs(list) do h:abort(reason) end
end

TaskSet.__close = function(self) self:abort_all() end

--- quench.task_set([opts]): a JoinSet; `<close>` aborts what is left.
-- opts.detach: tasks leave the set as they end (their results are dropped,
-- a failure is reported as a detached task's is), for a set that is only a
-- group to abort together.
function quench.task_set(opts)
  local detach = false
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("bad argument #1 to 'task_set' (table expected, got " .. type(opts) .. ")", 2)
    end
    for k, v in pairs(opts) do
      if k ~= "detach" then
        error("bad argument #1 to 'task_set' (unknown option '" .. describe(k) .. "')", 2)
      end
      if type(v) ~= "boolean" then
        error("bad argument #1 to 'task_set' (opts.detach must be a boolean, got " .. type(v) .. ")", 2)
      end
      detach = v
    end
  end
  return setmetatable({ tasks = {}, count = 0, finished = {}, head = 1, tail = 0,
    detach = detach, wake = quench.notify() }, TaskSet)
end

---------------------------------------------------------------------------
-- join_all, try_join
---------------------------------------------------------------------------

-- Check every argument before spawning any: a bad one leaves nothing running.
local function start_all(fname, ...)
  local n = select("#", ...)
  for i = 1, n do
    local f = select(i, ...)
    if type(f) ~= "function" then
      local owner = internal.task_of(f)
      if owner == "other" then
        error("bad argument #" .. i .. " to '" .. fname .. "' (the task belongs to another "
          .. "runtime: a task handle is only valid in the quench.run that spawned it)", 3)
      elseif owner ~= "this" then
        error("bad argument #" .. i .. " to '" .. fname .. "' (function or task expected, got "
          .. type(f) .. ")", 3)
      end
    end
  end
  local hs = {}
  for i = 1, n do
    local f = select(i, ...)
    hs[i] = type(f) == "function" and quench.spawn(f) or f
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

---------------------------------------------------------------------------
-- first_success
---------------------------------------------------------------------------

--- quench.first_success(...): functions (run as tasks) or task handles; the
-- first to return without raising wins: the others are aborted and its
-- index and results are returned. Raises a "multiple" error holding every
-- error (in argument order) only when all failed.
function quench.first_success(...)
  local n = select("#", ...)
  if n == 0 then
    error("bad argument #1 to 'first_success' (function or task expected, got no value)", 2)
  end
  local hs = start_all("first_success", ...)
  local _aborter <close> = quench.guard(function() for _, h in ipairs(hs) do h:abort() end end)
  local errs, left = {}, n
  while left > 0 do
    local ops, map = {}, {}
    for i, h in ipairs(hs) do
      if errs[i] == nil then ops[#ops + 1] = h:join_op(); map[#ops] = i end
    end
    local r = table.pack(quench.select(table.unpack(ops)))
    local i = map[r[1]]
    if r[2] then return i, table.unpack(r, 3, r.n) end
    errs[i] = { r[3] }
    left = left - 1
  end
  local list = {}
  for i = 1, n do list[i] = errs[i][1] end
  error(setmetatable({ kind = "multiple", error = list[1], errors = list, n = n,
    message = "all " .. n .. " failed; the first: " .. describe(list[1]) }, MULTIPLE), 0)
end
