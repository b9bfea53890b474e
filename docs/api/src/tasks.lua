--- Tasks: running a runtime, spawning, joining, aborting, cancelling, cleanup.
--
-- A task is a Lua function run as a coroutine by quench's scheduler, inside
-- `quench.run`. It runs until it *awaits* (a call that waits), and only
-- there can it be stopped. Guide: [docs/tasks.md](../../tasks.md),
-- [docs/cancellation.md](../../cancellation.md).
--
-- Conventions of this reference:
--
-- * **Await**: a function marked as one suspends the calling task; it must
--   be called from a task (or a select branch) and raises
--   `... not inside quench.run (waiting needs a running task)` outside one,
--   and `... called from a coroutine that is not a quench task or select
--   branch` from a plain coroutine. An await that can complete at once does
--   not suspend. In a task that was cancelled (`h:cancel`), every await
--   raises `Cancelled` (except inside `quench.shield`).
-- * **Cancel safety** says what is lost when a waiting call is *dropped*:
--   its task is aborted, it loses a select, a timeout around it expires, or
--   a cancel reaches it. Calls that never wait say so.
-- * Misuse (wrong argument types) raises an error naming the function.
--
-- @module tasks
-- @field _VERSION the version of quench, a string such as `"0.2.0"`

--- Run `fn(...)` as the main task of a new runtime and return its results.
--
-- The runtime lives until `fn` is done; then every task still alive is
-- aborted (its cleanup runs; pending tasks never start), every libuv handle
-- is closed, unobserved task failures are reported, and `run` returns
-- `fn`'s results or re-raises `fn`'s error (the same value).
--
-- **Cancel safety.** Not an await: `run` is called from plain code, never
-- from a task (runtimes do not nest).
--
-- @tparam[opt] table opts options:
--
--  * `clock`: `"real"` (default), `"virtual"` (time jumps to the next timer
--    when no task is runnable) or `"manual"` (time moves only with
--    `quench.advance`);
--  * `seed`: an integer seeding the runtime's generator (select's order);
--    random by default;
--  * `on_task_error`: `function(err, traceback, handle)` receiving the
--    failures nobody observed, instead of stderr;
--  * `on_warning`: `function(message)` receiving warnings (slow tasks)
--    instead of stderr;
--  * `slow_task`: seconds; a task running longer than this without awaiting
--    is reported as a warning;
--  * `fail_alloc`: a positive integer k, for tests: the core's k-th
--    allocation, counted from the runtime's creation (which is the 1st),
--    fails once, as if memory ran out. Whatever then fails raises, or
--    reports to `on_task_error`, an error saying "out of memory" (an I/O
--    call returns `nil, "ENOMEM: out of memory", "ENOMEM"`).
--    `quench.stats().allocs` counts the allocations of a run
--    (docs/how-quench-is-tested.md, "Allocation failures").
-- @tparam function fn the main task's function
-- @param ... arguments for `fn`
-- @return everything `fn` returned
-- @raise `fn`'s error, re-raised as is; `quench.run: a runtime is already
-- running here (runtimes do not nest)`; `quench.run: deadlock: ...` when the
-- main task waits and nothing can wake it; `quench.run: the manual clock
-- stalled: ...`; `quench.run: out of memory (cannot create the runtime)`;
-- a bad option (`bad argument #1 to 'quench.run' (opts.clock must be
-- ...)`, `opts.fail_alloc must be a positive integer ...`), or a key that is
-- not an option (`bad argument #1 to 'run' (unknown option 'clok')`).
-- @usage print(quench.run(function(a) quench.sleep(0.1); return a + 1 end, 41))  --> 42
function quench.run(opts, fn, ...) end

--- Spawn a task running `fn(...)` and return its handle.
--
-- The task does not run yet: it starts at the spawner's next await (S1),
-- in FIFO order with the other queued tasks.
--
-- **Cancel safety.** Not an await: it never suspends and is not a
-- cancellation point.
--
-- @tparam function fn the task's function
-- @param ... its arguments
-- @treturn Task the handle
-- @raise `bad argument #1 to 'spawn' (function expected, ...)`; `quench.spawn:
-- not inside quench.run` outside a runtime.
function quench.spawn(fn, ...) end

--- The handle of the running task.
--
-- Inside a select branch or a scope body it is the task running them (a
-- branch is not a task).
--
-- **Cancel safety.** Not an await.
--
-- @treturn ?Task the running task's handle, or nothing outside a task
-- @raise never
function quench.current() end

--- Register `fn` to run when the current task ends, however it ends.
--
-- Defers run after the task's `<close>` variables, last registered first,
-- on return, error and abort alike. A defer belongs to the task, not to the
-- function that registered it. Defers are drop-time cleanup: they cannot
-- await.
--
-- **Cancel safety.** Not an await; it registers and returns.
--
-- @tparam function fn called with no arguments at the task's end
-- @raise outside a task (`quench.defer: not inside quench.run ...`); from a
-- cleanup already running (`quench.defer: cannot wait in drop-time cleanup
-- ...`); `bad argument #1 to 'defer' (function expected, ...)`.
function quench.defer(fn) end

--- A scopeguard: a `<close>` value that runs `fn(err)` once at scope exit.
--
-- `err` is the error the block is exiting with, or nil. A guard needs no
-- task: it works wherever `<close>` does. `g:dismiss()` disarms it.
--
-- **Cancel safety.** Not an await. When the guard runs because its task is
-- dropped, `fn` is drop-time cleanup and cannot await.
--
-- @tparam function fn the cleanup
-- @treturn Guard the guard, to hold in a `<close>` variable
-- @raise `bad argument #1 to 'guard' (function expected, ...)`; whatever
-- `fn` raises, when it runs.
-- @usage local _ <close> = quench.guard(function(err) conn:close() end)
function quench.guard(fn) end

--- Run `fn(...)` shielded from graceful cancellation and return its results.
--
-- Awaits inside `fn` (and inside selects and timeouts it starts) do not see
-- the task's `Cancelled`, so it can await async cleanup (flush, ROLLBACK,
-- goodbye). Entering a shield is not a cancellation point; the first await
-- after it raises again. A shield does not protect against a drop (abort,
-- `<close>` handle, the select or timeout around it finishing).
--
-- **Cancel safety.** A cancel does not interrupt `fn`; a drop does, as for
-- any code: `fn` stops at its current await and its `<close>` variables run.
-- Not being a cancellation point, entering a shield in a cancelled task does
-- not raise.
--
-- @tparam function fn the code to shield
-- @param ... its arguments
-- @return what `fn` returns
-- @raise what `fn` raises; outside a task, a clear error; shields nested
-- more than 4095 deep, `quench.shield: nested more than 4095 deep`.
function quench.shield(fn, ...) end

--- Every live task of the running runtime.
--
-- One table per task: `id`, `name` (or nil), `state` (`"pending"`,
-- `"suspended"`, `"running"`), `waiting` (what a suspended task waits for,
-- in words: `"sleep until 5.0"`, `"join"`, `"channel recv"`, `"yield"`,
-- ...; nil otherwise), `age` (seconds since spawn, to within 16.8 ms: the
-- spawn time is kept as 32 bits of that unit, so an age wraps after 2.3
-- years), `handle`, `parent` (the
-- id of the task that spawned it, which may have ended; nil for the main
-- task), `site` (`"file:line"` of the spawn, when
-- `quench.record_spawn_sites(true)` was on; nil otherwise) and `defined`
-- (`"file:line"` where the task's function is defined; nil for a C
-- function; always there, read from the function when asked).
--
-- **Cancel safety.** Not an await.
--
-- @treturn {table,...} the list, in spawn order
-- @raise `quench.tasks: not inside quench.run` outside a runtime
function quench.tasks() end

--- Turn the recording of spawn sites on or off for the running runtime.
--
-- While on, each spawn notes the `file:line` of the user code that made it
-- (the first frame outside quench's own Lua: a scope child is reported
-- where `s:spawn` was called), shown by `quench.tasks()` and `quench.dump`.
-- Off by default: reading the stack doubles the cost of a spawn (Kotlin's
-- `DebugProbes` and tokio's task dumps are opt-in for the same reason);
-- the `defined` field of `quench.tasks()` is there without it.
--
-- **Cancel safety.** Not an await.
--
-- @tparam[opt] boolean on the new setting (omitted: only read it)
-- @treturn boolean the previous setting
-- @raise `quench.record_spawn_sites: not inside quench.run`; `bad argument
-- #1 to 'record_spawn_sites' (boolean expected, ...)`
function quench.record_spawn_sites(on) end

--- Print the live tasks as a tree (asyncio's `pstree`, a JVM thread dump).
--
-- Each task is shown under the task that spawned it, with its id, name,
-- state, what it waits for, age, spawn site (if recorded) and, for a
-- suspended task, its traceback. A task whose parent has ended is shown at
-- the top, naming the parent.
--
-- **Cancel safety.** Not an await.
--
-- @tparam[opt] table opts `file`: where to write (default `io.stderr`;
-- `false`: nowhere), `tracebacks`: boolean (default true)
-- @treturn string the text
-- @raise outside a runtime; `bad argument #1 to 'dump' (unknown option '...')`
function quench.dump(opts) end

--- Spawn a detached task that calls `quench.dump(opts)` on each delivery
-- of a signal (default `"SIGUSR1"`): `kill -USR1 <pid>` shows what a stuck
-- program is doing. Installing it takes over the signal's default action
-- (see `quench.signal`). Abort the returned task to stop it.
--
-- **Cancel safety.** Not an await.
--
-- @tparam[opt] string name the signal (default `"SIGUSR1"`)
-- @tparam[opt] table opts as for `quench.dump`
-- @treturn Task the dumping task (named `quench.dump_on_signal <name>`)
-- @raise `bad argument #1 to 'signal_op' (unknown signal ...)`; outside a
-- runtime
function quench.dump_on_signal(name, opts) end

--- Counters of the running runtime.
--
-- `allocs` and `live_blocks` count the C core's memory (not Lua's, not
-- libuv's): the allocations it asked for since the runtime was made (the
-- runtime's own first; the number `quench.run`'s `fail_alloc` refers to),
-- and its blocks not freed yet. Outside `quench.run`, the table has only
-- these two and `arena_bytes`: `allocs` of the last runtime, from its creation to its end,
-- and `live_blocks` still held by ended runtimes' objects not yet collected
-- (channel buffers, I/O objects); 0 after a full garbage collection unless
-- something leaks. `arena_bytes` (in both) is the memory the small-block
-- allocator quench installs in the Lua state has taken from the system so
-- far (it keeps it until the state closes; 0 when it is off: under
-- AddressSanitizer or valgrind, or with `QUENCH_ARENA=0` in the
-- environment; docs/performance.md).
--
-- **Cancel safety.** Not an await.
--
-- @treturn table `spawned`, `finished`, `cancelled`, `failed`, `polls`,
-- `alive` (spawned minus finished), `allocs`, `live_blocks` and
-- `arena_bytes`, all integers; outside a runtime `allocs`, `live_blocks`
-- and `arena_bytes` only
-- @raise never
function quench.stats() end

--- A task handle (`quench.task`), returned by `quench.spawn`, `t:spawn`,
-- `s:spawn`, `set:spawn`.
--
-- A handle is a plain value: any number of tasks may join it. Held in a
-- `<close>` variable it aborts its task at scope exit (S4); garbage
-- collection never cancels a task. `tostring(h)` is `quench.task #3 (pending)`.
-- @type Task

--- Wait until the task is done and return how it ended.
--
-- The result is kept: later joins return it again without waiting. A join
-- that returns a failure marks it observed (it is not reported on stderr).
--
-- **Cancel safety.** Cancel-safe. Dropping a join leaves the joined task
-- alone (it is not cancelled) and its result stays for a later join.
--
-- @treturn boolean `true` if the task returned, `false` if it raised or was
-- cancelled
-- @return ... the task's results, or its error (exactly as raised) or a
-- Cancelled value
-- @raise outside a task; `quench.task:join: a task cannot join itself`;
-- `calling 'join' on bad self (the task belongs to another runtime)`.
-- This is an await.
function Task:join() end

--- The op of `join`: an op whose results are those of `h:join()`.
--
-- **Cancel safety.** As `join`. The op is single-use.
--
-- @treturn Op the op
-- @raise `bad argument #1 to 'join_op' (quench.task expected, ...)`; when
-- awaited or selected: the errors of `join`.
function Task:join_op() end

--- Abort the task: drop it at its current await (Rust's drop).
--
-- Before `abort` returns, for a suspended task: its pending op is dropped,
-- its coroutine closed (its `<close>` variables run, innermost first), its
-- defers run (last first), and it is done as cancelled. A pending task
-- never runs. A finished task keeps its result. A self-abort takes effect
-- at the task's next await, which never returns. The first reason given to
-- `abort`, `cancel`, `stop` or a bound token wins.
--
-- **Cancel safety.** Not an await: it never suspends the caller.
--
-- @param[opt] reason any value, found as `err.reason` in the task's result
-- @raise `bad argument #1 to 'abort' (quench.task expected, ...)`. After the
-- task's runtime has ended it does nothing.
function Task:abort(reason) end

--- Cancel the task gracefully and return at once.
--
-- The task sees a `Cancelled` error raised from its current await (the op
-- is dropped first) or its next one, and from every later await
-- (level-triggered), except inside `quench.shield`. A task that catches it
-- and returns normally is done with its values.
--
-- **Cancel safety.** Not an await.
--
-- @param[opt] reason any value, found as `err.reason`
-- @raise `bad argument #1 to 'cancel' (quench.task expected, ...)`
function Task:cancel(reason) end

--- Cancel gracefully, wait up to `grace` seconds, then abort: the
-- escalation of S5 in one call.
--
-- Returns what `join` returns. A task already done returns its result at
-- once; `grace = 0` aborts before the task runs again.
--
-- **Cancel safety.** The cancel request reaches the target before `stop`
-- first waits. If `stop` is dropped during the grace period, the target is
-- left cancelled but not aborted: it may run on. Shield the stop
-- (`quench.shield(h.stop, h, 5)`) or hold the handle in a `<close>`
-- variable when it must not outlive the caller.
--
-- @tparam number grace seconds to wait before aborting
-- @param[opt] reason the cancel reason
-- @treturn boolean as `join`
-- @return ... as `join`
-- @raise `bad argument #1 to 'stop' (number expected, ...)`, `(seconds must
-- be >= 0, got -1)` for a negative or NaN grace; `a task cannot
-- stop itself (use cancel)`; outside a task. This is an await.
function Task:stop(grace, reason) end

--- Whether the task is done (returned, raised or was aborted).
--
-- **Cancel safety.** Not an await.
--
-- @treturn boolean `h:state() == "done"`
-- @raise `bad argument #1 to 'done' (quench.task expected, ...)`
function Task:done() end

--- Register `fn` to run when the task ends, on every outcome, as if the
-- task had called `quench.defer(fn)` first: it runs after the task's own
-- defers (LIFO), also when the task is aborted before it ever ran.
--
-- **Cancel safety.** Not an await. `fn` is drop-time cleanup: it cannot await.
--
-- @tparam function fn called with no arguments at the task's end
-- @raise `quench.task:defer: the task has ended`; `bad argument #2 to
-- 'defer' (function expected, ...)`.
function Task:defer(fn) end

--- Opt the handle out of aborting its task at `<close>`.
--
-- A detached task's failure is reported at once (stderr or
-- `on_task_error`), as nobody is expected to join it.
--
-- **Cancel safety.** Not an await.
--
-- @raise `bad argument #1 to 'detach' (quench.task expected, ...)`
function Task:detach() end

--- The task's id, a number unique within its runtime (ids are 48 bits:
-- they would repeat after 2^48 spawns in one run, years of spawning at
-- millions a second).
--
-- **Cancel safety.** Not an await.
--
-- @treturn integer the id
-- @raise `bad argument #1 to 'id' (quench.task expected, ...)`
function Task:id() end

--- The task's state.
--
-- **Cancel safety.** Not an await.
--
-- @treturn string `"pending"` (spawned, never run), `"running"`,
-- `"suspended"` (waiting, or woken and queued) or `"done"`
-- @raise `bad argument #1 to 'state' (quench.task expected, ...)`
function Task:state() end

--- Read or set the task's name, shown by `quench.tasks()` and in reports.
--
-- **Cancel safety.** Not an await.
--
-- @tparam[opt] ?string new the new name (nil clears it); omit to read
-- @treturn ?string the name, when called without `new`
-- @raise `bad argument #1 to 'name' (string expected, ...)`
function Task:name(new) end

--- Where a suspended task waits: a Lua traceback of its coroutine.
--
-- **Cancel safety.** Not an await.
--
-- @treturn ?string the traceback, or nil if the task is not suspended
-- @raise `bad argument #1 to 'traceback' (quench.task expected, ...)`
function Task:traceback() end

--- A scopeguard (`quench.guard`), returned by `quench.guard(fn)`.
-- Its `__close` runs `fn(err)` once.
-- @type Guard

--- Disarm the guard: its function will not run.
--
-- **Cancel safety.** Not an await.
--
-- @raise `bad argument #1 to 'dismiss' (quench.guard expected, ...)`
function Guard:dismiss() end
