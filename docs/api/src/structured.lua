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
-- @tparam[opt] table opts `grace`: seconds children get to finish after the
-- scope is cancelled (default 5)
-- @tparam function fn the body, called as `fn(s, ...)`
-- @param ... arguments for `fn`
-- @return ... the body's results (nothing if the scope was cancelled
-- before the body returned)
-- @raise the single error of a child or the body, as raised; several: a
-- table `{kind = "multiple", error = first, errors = {...}}`; the task's
-- own `Cancelled`; `bad argument #1 to 'scope' (function expected, ...)`.
-- This is an await.
-- @usage quench.scope(function(s)
--   s:spawn(serve, conn1)
--   s:spawn(serve, conn2)
-- end)                      -- returns when both handlers ended
function quench.scope(opts, fn, ...) end

--- A task set (tokio's JoinSet): tasks joined in completion order; `<close>`
-- aborts those left.
--
-- **Cancel safety.** Not an await.
--
-- @treturn TaskSet the set
-- @raise never
function quench.task_set() end

--- Run functions as tasks (or take task handles) and wait for all of them.
--
-- If the caller is dropped, every task started or given is aborted.
--
-- **Cancel safety.** Dropping `join_all` aborts all its tasks (their
-- cleanup runs); nothing is left running.
--
-- @param ... functions (spawned as tasks) or task handles
-- @treturn {table,...} one `table.pack(ok, results...)` per argument, in order
-- @raise `bad argument #i to 'join_all' (function or task expected, ...)`;
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
-- 'spawn' (function expected, ...)`.
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

--- A task set, made by `quench.task_set()`.
-- @type TaskSet

--- Spawn a task into the set.
--
-- **Cancel safety.** Not an await.
--
-- @tparam function fn the task's function
-- @param ... its arguments
-- @treturn Task the handle
-- @raise `bad argument #1 to 'spawn' (function expected, ...)`; outside a runtime.
function TaskSet:spawn(fn, ...) end

--- How many tasks are in the set (not yet returned by `join_next`).
--
-- **Cancel safety.** Not an await.
--
-- @treturn integer the count
-- @raise never
function TaskSet:len() end

--- Wait for the next task to end, in completion order.
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
