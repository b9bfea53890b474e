--- The blocking pool: run a Lua function on libuv's thread pool.
--
-- *Since quench 0.2.0.* `fn` runs in a fresh
-- Lua state of its own per call; arguments and results are deep-copied
-- (nil, booleans, numbers, strings, and tables of those without
-- metatables). `fn` may use its globals and the quench module, no other
-- upvalue. Nothing can interrupt a thread: a dropped call never waits for
-- it, the worker is told through `quench.blocking_cancelled()`, and
-- `quench.run` waits for stragglers before it returns. Use the real clock
-- around the pool. Guide: [docs/io.md](../../io.md#blocking-pool), example
-- `examples/blocking_cancel.lua`.
-- @module blocking

--- Run `fn(...)` on the thread pool and wait for its results.
--
-- **Cancel safety.** Nothing the caller had is lost. A dropped call that
-- is still queued never runs; one that runs is told
-- (`blocking_cancelled()` turns true), nobody waits for the thread, and its
-- results are discarded. Its side effects (files written) stay.
--
-- * before it waits: nothing runs (an op never awaited frees its state when
--   collected)
-- * while waiting: queued: never runs. Running: `blocking_cancelled()` turns
--   true, nobody waits for the thread; its results are discarded
-- * given, not resumed: the work has ended; its results are discarded, its
--   side effects stay
--
-- @tparam function fn a Lua function (its upvalues: `_ENV` and the quench
-- module only)
-- @param ... arguments, copied into the worker
-- @return ... `fn`'s results, copied back
-- @raise `fn`'s error, as a string; a value that cannot be copied, naming
-- the argument and where in it (`quench.blocking: argument #2 (at .a.b[2]):
-- cannot copy a function ...`); a C function or a refused upvalue; outside a
-- task; `Cancelled` in a cancelled task. This is an await.
-- @usage local n = quench.blocking(count_primes, 100000)
function quench.blocking(fn, ...) end

--- The op form: `fn` and its arguments are checked and copied now; it runs
-- when the op is awaited or selected.
--
-- **Cancel safety.** As `quench.blocking`; an op never awaited frees its
-- state when collected.
--
-- @tparam function fn a Lua function
-- @param ... arguments
-- @treturn Op an op completing with `true, results...` or `false, message`
-- (its completion never raises, like `join_op`)
-- @raise as `quench.blocking` for `fn` and the arguments
function quench.blocking_op(fn, ...) end

--- Inside a worker: whether the call running it was dropped.
--
-- Check it now and then in long work and stop early when it is true.
--
-- **Cancel safety.** Never waits (an atomic flag read).
--
-- @treturn boolean `true` once the call was dropped
-- @raise outside a worker (in the calling runtime) a clear error
function quench.blocking_cancelled() end
