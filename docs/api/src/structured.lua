--- Structured concurrency: scopes (nurseries), task sets, join_all, try_join.
--
-- Written in Lua (`lua/quench/structured.lua`) on top of tokens, select and
-- shield. Guide: [docs/structured.md](../../structured.md).
-- @module structured

--- Run `fn(s, ...)` with a new scope `s`; return only when every task it
-- spawned with `s:spawn` has ended.
--
-- The body runs in the caller's task (as a select branch). The first error
-- (of a child or of the body) cancels the rest: children get `Cancelled`
-- (graceful, they may clean up in `quench.shield`) and are aborted after
-- the grace period; the body is dropped at its current await. Cancelling
-- the task running the scope cancels the children with the same reason;
-- aborting it aborts them before the abort returns.
--
-- **Cancel safety.** Dropping the scope (its task aborted, a select or
-- timeout around it finishing) aborts every child on the spot, with their
-- cleanup. A graceful cancel of its task is passed to the children, waited
-- for (grace period included), then raised.
--
-- A cancel of the task running the scope also reaches a scope whose body
-- has returned and that waits for its children: they are cancelled with its
-- reason (and, through their own scopes, their children).
--
-- Memory: the scope holds a child only until it has ended and its outcome
-- is read, so a scope around an accept loop costs the connections alive.
--
-- **Deadline.** With `opts.timeout` (seconds from now) or `opts.deadline`
-- (a `quench.now()` time; `math.huge` for none yet, to set one later with
-- `s:set_deadline`), the scope is cancelled at the deadline and raises a
-- Timeout value (`quench.is_timeout`) once its children are gone. The body
-- then runs as the scope's first child task (not in the caller's task), so
-- the deadline cancels it gracefully like the others: a scope inside it
-- gets its own grace. Children see `Cancelled` whose reason is the Timeout.
-- `quench.current_deadline()` reads the earliest deadline in force.
--
-- **Supervisor.** With `opts.supervise = true` a child's failure cancels
-- nobody: the other children run on, and the failures are raised when all
-- have ended (one as itself, several as a "multiple" error), or given to
-- `opts.on_failure(err, task)` as they happen (then the scope returns
-- normally; a handler that raises fails the scope). A failure of the body,
-- a `s:cancel`, a deadline or a cancel of the task still cancels every child.
--
-- @tparam[opt] table opts `grace`: seconds (a number `>= 0`) children get to
-- finish after the scope is cancelled (default 5); `timeout` (seconds `>= 0`)
-- or `deadline` (a `quench.now()` time); `supervise` (boolean);
-- `on_failure` (function, with `supervise`); any other key is refused
-- @tparam function fn the body, called as `fn(s, ...)`
-- @param ... arguments for `fn`
-- @return ... the body's results (nothing if the scope was cancelled
-- before the body returned)
-- @raise the single error of a child or the body, as raised (any value,
-- `nil` and NaN included); several: a table `{kind = "multiple", error =
-- first, errors = {...}, n = count}`; the task's own `Cancelled`; `bad
-- argument #1 to 'scope' (function or options table expected, ...)`,
-- `(unknown option '...')`, `(opts.grace must be a number of seconds >= 0,
-- ...)`, `(give opts.timeout or opts.deadline, not both)`, `(opts.timeout
-- must be ...)`, `(opts.deadline must be ...)`, `(opts.supervise must be a
-- boolean, ...)`, `(opts.on_failure needs opts.supervise = true)`; `bad
-- argument #2 to 'scope' (function expected, ...)`; a Timeout value at the
-- deadline.
-- This is an await.
-- @usage quench.scope(function(s)
--   s:spawn(serve, conn1)
--   s:spawn(serve, conn2)
-- end)                      -- returns when both handlers ended
function quench.scope(opts, fn, ...) end

--- `quench.scope({supervise = true}, fn, ...)`: a scope in which a child's
-- failure does not cancel its siblings (Kotlin's `supervisorScope`).
--
-- **Cancel safety.** As `quench.scope`.
--
-- @tparam function fn the body, called as `fn(s, ...)`
-- @param ... arguments for `fn`
-- @return ... the body's results
-- @raise the children's failures once all have ended (one as itself,
-- several as a "multiple" error); `bad argument #1 to 'supervisor'
-- (function expected, ...)`. This is an await.
function quench.supervisor(fn, ...) end

--- The earliest deadline in force where it is called (trio's
-- `current_effective_deadline`): of the `quench.timeout` and
-- `quench.deadline` calls and of the scopes the running code is inside,
-- read live: a moved scope deadline shows at once.
--
-- A scope's children see the deadlines around the scope, its own and the
-- timeouts around the place it was opened (task-local context,
-- `quench.context`). A task that outlives the scope (a plain `quench.spawn`)
-- stops seeing them when the scope ends, and a plain `quench.spawn` inside a
-- `quench.timeout` is not bounded by it (the timeout drops only its own
-- branch). A deadline that is not a scope's or a timeout's (a `sleep_op` in a
-- `select`) is not counted.
--
-- **Cancel safety.** Not an await.
--
-- @treturn number a `quench.now()` time, or `math.huge` when there is none
-- @raise never
function quench.current_deadline() end

--- A task set (tokio's JoinSet): tasks joined in completion order; `<close>`
-- aborts those left.
--
-- A set keeps each task that ended until `join_next` returns it. With
-- `opts.detach = true` it keeps nothing of a task that ended: its results
-- are dropped and a failure is reported at once, as a detached task's
-- (`on_task_error` of `quench.run`, or stderr); for a set that is only a
-- group to abort together, such as a server's connection handlers.
--
-- **Cancel safety.** Not an await.
--
-- @tparam[opt] table opts `detach`: a boolean (default false)
-- @treturn TaskSet the set
-- @raise `bad argument #1 to 'task_set' (unknown option '...')`, `(opts.detach
-- must be a boolean, ...)`
function quench.task_set(opts) end

--- Run functions as tasks (or take task handles) and wait for all of them.
--
-- If the caller is dropped, every task started or given is aborted.
--
-- **Cancel safety.** Dropping `join_all` aborts all its tasks (their
-- cleanup runs); nothing is left running.
--
-- @param ... functions (spawned as tasks) or task handles
-- @treturn {table,...} one `table.pack(ok, results...)` per argument, in order
-- @raise `bad argument #i to 'join_all' (function or task expected, ...)`, `(the task
-- belongs to another runtime ...)` for a handle of an earlier run;
-- outside a task. This is an await.
function quench.join_all(...) end

--- Like `join_all`, but the first failure aborts the others.
--
-- **Cancel safety.** As `join_all`: dropping it aborts every task.
--
-- @param ... functions (spawned as tasks) or task handles
-- @treturn boolean `true` if all succeeded
-- @return `{table.pack(results...), ...}` per argument, or the first error
-- @raise `bad argument #i to 'try_join' (function or task expected, ...)`;
-- outside a task. This is an await.
function quench.try_join(...) end

--- Race for the first success (Rust's `select_ok`, Java's
-- `anySuccessfulOrThrow`): hedged requests, failing over between replicas.
--
-- Runs functions as tasks (or takes task handles). The first to return
-- without raising wins: the others are aborted (their cleanup has run) and
-- its index and results are returned. A failure (an error, or a task
-- cancelled) does not win; the race fails only when every branch failed.
-- Arguments are checked before anything is spawned.
--
-- **Cancel safety.** As `join_all`: dropping it aborts every task.
--
-- @param ... functions (spawned as tasks) or task handles
-- @treturn integer the index of the winner
-- @return ... its results
-- @raise when all failed, a table `{kind = "multiple", error = first,
-- errors = {...}, n = count}` with every error in argument order; `bad
-- argument #i to 'first_success' (function or task expected, ...)`;
-- outside a task. This is an await.
function quench.first_success(...) end

--- A scope, passed to the body of `quench.scope`. `s.token` is its token
-- (children are bound to it).
-- @type Scope

--- Spawn a child task of the scope: bound to the scope's token and waited
-- for by the scope.
--
-- **Cancel safety.** Not an await.
--
-- @tparam function fn the child's function
-- @param ... its arguments
-- @treturn Task the handle
-- @raise `quench.scope:spawn: the scope has ended`; `bad argument #1 to
-- 'spawn' (function expected, ...)`; `bad argument #1 to 'spawn'
-- (quench.scope expected, got function; call it with a colon ...)` when
-- called with a dot.
function Scope:spawn(fn, ...) end

--- End the scope early, without an error: the children are cancelled
-- (gracefully, aborted after the grace period) and the body is dropped at
-- its current await. The first reason is kept.
--
-- **Cancel safety.** Not an await.
--
-- @param[opt] reason the reason children see (`s.token:reason()`)
-- @raise never
function Scope:cancel(reason) end

--- Whether the scope was cancelled (by `cancel`, by an error, or by a
-- cancel of the task running it).
--
-- **Cancel safety.** Not an await.
--
-- @treturn boolean cancelled or not
-- @raise never
function Scope:is_cancelled() end

--- Record `err` as an error of the scope and cancel it. Used by the scope's
-- own children and body; user code raises instead.
--
-- **Cancel safety.** Not an await.
--
-- @param err the error (a `Cancelled` caused by the scope's own cancel is
-- ignored)
-- @raise never
function Scope:fail(err) end

--- The scope's deadline.
--
-- **Cancel safety.** Not an await.
--
-- @treturn number a `quench.now()` time, `math.huge` if it has none
-- @raise on a bad self
function Scope:deadline() end

--- Move the deadline of a scope made with one, earlier or later, while it
-- runs (trio's `CancelScope.deadline`, asyncio's `Timeout.reschedule`). A
-- deadline already past cancels the scope at once.
--
-- **Cancel safety.** Not an await.
--
-- @tparam number t a `quench.now()` time (`math.huge`: none)
-- @raise `quench.scope:set_deadline: the scope has no deadline (...)`; `bad
-- argument #1 to 'set_deadline' (the deadline must be a number, ...)`
function Scope:set_deadline(t) end

--- Whether the scope was cancelled by its deadline.
--
-- **Cancel safety.** Not an await.
--
-- @treturn boolean
-- @raise on a bad self
function Scope:timed_out() end

--- A task set, made by `quench.task_set()`.
-- @type TaskSet

--- Spawn a task into the set.
--
-- **Cancel safety.** Not an await.
--
-- @tparam function fn the task's function
-- @param ... its arguments
-- @treturn Task the handle
-- @raise `bad argument #1 to 'spawn' (function expected, ...)`; `bad argument
-- #1 to 'spawn' (quench.task_set expected, ...; call it with a colon ...)`
-- when called with a dot; outside a runtime.
function TaskSet:spawn(fn, ...) end

--- How many tasks are in the set (not yet returned by `join_next`; in a
-- detaching set: still running).
--
-- **Cancel safety.** Not an await.
--
-- @treturn integer the count
-- @raise never
function TaskSet:len() end

--- Wait for the next task to end, in completion order. In a detaching set
-- (`opts.detach`), which keeps no results: wait until the set is empty, then
-- return nil.
--
-- **Cancel safety.** Cancel-safe: a dropped `join_next` loses nothing; the
-- finished task stays for the next call.
--
-- @treturn ?Task the task's handle, or nil when the set is empty
-- @treturn boolean as `h:join()`
-- @return ... as `h:join()`
-- @raise outside a task; `Cancelled` in a cancelled task. This is an await.
function TaskSet:join_next() end

--- Abort every task still in the set (their cleanup runs before it returns).
--
-- **Cancel safety.** Not an await.
--
-- @param[opt] reason the abort reason
-- @raise never
function TaskSet:abort_all(reason) end
