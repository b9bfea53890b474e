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

--- Suspend the task until `quench.now() >= t`.
--
-- The deadline is absolute: a loop of `sleep_until(t0 + k * period)` does
-- not drift, however long each step took. A `t` already past yields once
-- (as `sleep(0)`).
--
-- **Cancel safety.** Cancel-safe: dropping removes the timer and nothing
-- else is held; the deadline is the caller's, so a new `sleep_until(t)`
-- resumes the same wait.
--
-- * before it waits: nothing held
-- * while waiting: the timer is removed
-- * given, not resumed: nothing lost (a sleep carries no value)
--
-- @tparam number t a `quench.now()` time
-- @raise `bad argument #1 to 'sleep_until' (number expected, ...)`, also for
-- NaN; outside a task; `Cancelled` in a cancelled task. This is an await.
function quench.sleep_until(t) end

--- The op of `sleep_until`: its deadline is `t` whenever it starts.
--
-- **Cancel safety.** As `quench.sleep_until`.
--
-- @tparam number t a `quench.now()` time
-- @treturn Op the op (its await returns nothing)
-- @raise `bad argument #1 to 'sleep_until_op' (number expected, ...)`
function quench.sleep_until_op(t) end

--- An interval: ticks every `period` seconds on a fixed schedule (tokio's
-- `interval`, Go's `Ticker`), with a policy for ticks missed while the task
-- was busy.
--
-- `opts.missed`: `"burst"` (default: each missed tick fires at once, one
-- after another, until the schedule is caught up), `"delay"` (the next tick
-- is one period after the late one: the schedule moves), `"skip"` (missed
-- ticks are dropped and the next tick is the schedule's next one after now:
-- never two ticks for one period). A tick up to 5 ms late is not a miss.
-- `opts.start`: the time of the first tick (default: now, so the first
-- `tick` returns at once). Pure Lua over `quench.sleep_until`.
--
-- **Cancel safety.** Not an await.
--
-- @tparam number period seconds, `> 0`
-- @tparam[opt] table opts `missed`, `start`
-- @treturn Interval the interval
-- @raise `bad argument #1 to 'interval' (the period must be a positive
-- number of seconds, ...)`; `bad argument #2 to 'interval' (missed must be
-- "burst", "delay" or "skip", ...)`, `(unknown option '...')`
function quench.interval(period, opts) end

--- A resettable timer: elapses at a deadline that `reset` moves, so a
-- debounce or an idle timeout needs no respawn (tokio's `Sleep::reset`).
--
-- **Cancel safety.** Not an await.
--
-- @tparam number s seconds from now, `>= 0`
-- @treturn Timer the timer
-- @raise `bad argument #1 to 'timer' (seconds must be a number >= 0, ...)`
function quench.timer(s) end

--- An interval (`quench.interval`).
-- @type Interval

--- Wait for the next tick; return the time it was scheduled for.
--
-- **Cancel safety.** Cancel-safe: the schedule moves only after the sleep
-- has returned, with no await in between, so a dropped `tick` consumes no
-- tick: the next call waits for the same one.
--
-- * before it waits: nothing consumed
-- * while waiting: nothing consumed
-- * given, not resumed: nothing consumed (the tick is taken when `tick`
--   returns)
--
-- @treturn number the scheduled time of this tick (`quench.now()` scale)
-- @raise outside a task; `Cancelled` in a cancelled task. This is an await.
function Interval:tick() end

--- The op of `tick()` (`quench.op(interval.tick, interval)`): a branch of
-- its awaiting task when awaited or selected.
--
-- **Cancel safety.** As `tick`.
--
-- @treturn Op an op returning the tick's scheduled time
-- @raise on a bad self
function Interval:tick_op() end

--- Restart the schedule: the next tick is one period from now.
--
-- **Cancel safety.** Not an await.
--
-- @raise on a bad self
function Interval:reset() end

--- The time of the next tick.
--
-- **Cancel safety.** Not an await.
--
-- @treturn number a `quench.now()` time
-- @raise on a bad self
function Interval:next_tick() end

--- Change the missed-tick policy.
--
-- **Cancel safety.** Not an await.
--
-- @tparam string missed `"burst"`, `"delay"` or `"skip"`
-- @raise `bad argument #1 to 'set_missed' (missed must be ...)`
function Interval:set_missed(missed) end

--- A timer (`quench.timer`).
-- @type Timer

--- Wait until the timer has elapsed (at once if it has). A reset from any
-- task while it waits moves the wait to the new deadline.
--
-- **Cancel safety.** Cancel-safe: waiting changes nothing, and a dropped
-- wait leaves the timer as it was.
--
-- * before it waits: nothing changed
-- * while waiting: nothing changed
-- * given, not resumed: nothing lost (the timer stays elapsed)
--
-- @raise outside a task; `Cancelled` in a cancelled task. This is an await.
function Timer:wait() end

--- The op of `wait()` (`quench.op(timer.wait, timer)`).
--
-- **Cancel safety.** As `wait`.
--
-- @treturn Op an op returning what `wait` returns
-- @raise on a bad self
function Timer:wait_op() end

--- Move the deadline to `s` seconds from now (default: the timer's first
-- duration); waiters follow it.
--
-- **Cancel safety.** Not an await.
--
-- @tparam[opt] number s seconds, `>= 0`
-- @raise `bad argument #1 to 'reset' (seconds must be a number >= 0, ...)`
function Timer:reset(s) end

--- Move the deadline to the time `t` (earlier or later).
--
-- **Cancel safety.** Not an await.
--
-- @tparam number t a `quench.now()` time (`math.huge`: never)
-- @raise `bad argument #1 to 'reset_at' (a quench.now() time expected, ...)`
function Timer:reset_at(t) end

--- The deadline.
--
-- **Cancel safety.** Not an await.
--
-- @treturn number a `quench.now()` time
-- @raise on a bad self
function Timer:deadline() end

--- Whether the deadline has passed.
--
-- **Cancel safety.** Not an await.
--
-- @treturn boolean
-- @raise on a bad self
function Timer:is_elapsed() end
