--- Task-local context: values bound for a function's dynamic extent and
-- seen by every task spawned inside it (Python's `contextvars`, Swift's
-- `TaskLocal`, Java's `ScopedValue`).
--
-- A context is an immutable chain of bindings. `with` adds one for the
-- call; a spawn copies the spawner's current chain by reference (nothing is
-- copied value by value), so a task keeps the bindings of its spawn time
-- and a child's own `with` is never seen by its parent. Select branches and
-- `quench.timeout` bodies see their task's bindings. Reading walks the
-- chain from the innermost binding: cost grows with the number of bindings
-- in force, not with the number of tasks.
-- Guide: [docs/structured.md](../../structured.md#task-local-context).
-- @module context

--- Call `fn(...)` with `key` bound to `value`; return its results.
--
-- The binding is undone when `fn` ends, however it ends (a return, an
-- error, a drop by a cancel or a select). Tasks spawned inside keep it.
--
-- **Cancel safety.** Not an await itself; `fn` may wait, and dropping it
-- undoes the binding before the drop completes.
--
-- @param key any value but nil and NaN, compared by identity (use
-- `quench.context.key` for a private one)
-- @param value the value (nil hides an outer binding)
-- @tparam function fn the function
-- @param ... its arguments
-- @return ... `fn`'s results
-- @raise `quench.context.with: not inside a task`; `bad argument #1 to
-- 'with' (key expected, got nil)`; `bad argument #3 to 'with' (function
-- expected, ...)`; `fn`'s error
function quench.context.with(key, value, fn, ...) end

--- The value bound to `key` in the running task, innermost first.
--
-- **Cancel safety.** Not an await.
--
-- @param key the key
-- @param[opt] default what to return when `key` is not bound
-- @return the value, or `default` (nil outside a task)
-- @raise never
function quench.context.get(key, default) end

--- A fresh key, equal only to itself: two libraries never share one.
--
-- **Cancel safety.** Not an await.
--
-- @tparam string name for `tostring`: `quench.context.key (name)`
-- @return the key
-- @raise `bad argument #1 to 'key' (string expected, ...)`
function quench.context.key(name) end
