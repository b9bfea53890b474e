--- Time: sleeping, yielding, reading and moving the clock.
--
-- `quench.now()` counts seconds from the runtime's start on its clock
-- (`opts.clock` of `quench.run`): `"real"` (monotonic), `"virtual"` (jumps
-- to the next timer when no task is runnable) or `"manual"` (moves only
-- with `quench.advance`). A sleep never wakes early: its deadline comes
-- from a fresh reading of the time, rounded up to the nanosecond.
-- Guide: [docs/tasks.md](../../tasks.md#clocks-and-sleeping),
-- [docs/cancellation.md](../../cancellation.md#7-testing-cancellation-virtual-and-manual-clocks).
-- @module time

--- Suspend the task for `s` seconds.
--
-- `s <= 0` is `quench.yield()`: the queued tasks run once, then the task
-- continues. `s = math.huge` waits for ever (until cancelled, or the
-- run's deadlock error), as does any `s` whose deadline is past the
-- clock's range (584 years from the runtime's start): such a sleep arms
-- no timer, and a virtual clock never jumps to it.
--
-- **Cancel safety.** Cancel-safe: dropping removes the timer and nothing
-- else is held. The time already slept is not credited to a new sleep (keep
-- an absolute time and use `quench.deadline` to keep a deadline).
--
-- @tparam number s seconds
-- @raise `bad argument #1 to 'sleep' (number expected, ...)`, also for NaN;
-- outside a task; `Cancelled` in a cancelled task. This is an await.
function quench.sleep(s) end

--- The op of `sleep`: a single-use wait for `s` seconds.
--
-- The `s` seconds count from when the op is awaited or selected, not from
-- its creation.
--
-- **Cancel safety.** As `sleep`.
--
-- @tparam number s seconds
-- @treturn Op the op (its await returns nothing)
-- @raise `bad argument #1 to 'sleep_op' (number expected, ...)`
function quench.sleep_op(s) end

--- Let every queued task run once, then continue.
--
-- A cancellation point: a cancelled task gets `Cancelled` here, a
-- self-aborted one is dropped here. Put one in long CPU loops, which
-- otherwise can be neither cancelled nor interrupted.
--
-- **Cancel safety.** Cancel-safe: it holds nothing. It is a cancellation
-- point: in a cancelled task it raises `Cancelled`.
--
-- @raise outside a task; `Cancelled` in a cancelled task. This is an await.
function quench.yield() end

--- Seconds since the runtime started, on its clock.
--
-- Starts at 0 on the virtual and manual clocks, where it is exact.
--
-- **Cancel safety.** Not an await.
--
-- @treturn number seconds (a float)
-- @raise `quench.now: not inside quench.run` outside a runtime
function quench.now() end

--- Move a virtual or manual clock forward by `s` seconds.
--
-- Timers that fall due are woken; the tasks they wake run at the caller's
-- next await. On the manual clock this is the only way time moves.
--
-- **Cancel safety.** Not an await.
--
-- @tparam number s seconds, `>= 0` (`0` does nothing)
-- @raise `bad argument #1 to 'advance' (seconds must be >= 0, got -5)` for a
-- negative or NaN `s`; `quench.advance: the runtime's clock is real (run
-- with {clock = "manual"} or "virtual")`; outside a runtime.
function quench.advance(s) end
