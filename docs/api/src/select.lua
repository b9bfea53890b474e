--- Select, timeout and deadline; ops.
--
-- A *branch* is a function (called with no arguments: use a closure) or an
-- op. A function branch runs as a child coroutine of the caller, not as a
-- task: nothing is spawned and `quench.current()` inside it is the caller.
-- When one branch finishes, every other branch is dropped, its cleanup run,
-- before the call returns (S7). Guide:
-- [docs/cancellation.md](../../cancellation.md#14-select-timeout-deadline).
--
-- An *op* is a wait made without waiting: every waiting function `x` has an
-- `x_op` form. An op is single-use and starts only when awaited or
-- selected.
-- @module select

--- Run the branches concurrently; return the first to finish.
--
-- Fair: each poll starts at a branch drawn from the runtime's seeded
-- generator. A branch that is ready at once wins without the caller
-- suspending, and the branches after it in that poll's order never start
-- (unless the task has spent its cooperative budget of 128 awaits in this
-- run: it then suspends once first; see docs/tasks.md).
-- Ops given to a select are used up, winners and losers alike; the same op
-- given twice is refused before anything starts. Receive ops of one
-- channel keep its order: the winner gets the oldest value.
--
-- **Cancel safety.** Dropping a select drops every branch, with its cleanup.
-- A loser loses exactly what its pending op loses (see that op), and its
-- side effects before that await stay done: a select is cancel-safe when
-- every branch's pending op is. Ops given to a select are used up, winners
-- and losers alike.
--
-- @param ... branches: functions or ops, at least one
-- @treturn integer the index of the winning branch
-- @return ... the winner's results
-- @raise `quench.select: needs at least one branch`; a bad branch (neither
-- function nor op, or an op already used); the winner's error, re-raised
-- after the others were dropped; a loser's drop-time cleanup error;
-- `Cancelled` in a cancelled task; `nesting limit reached` when function
-- branches nest more than 5,000 deep (docs/tasks.md, "Nesting": past 16
-- nested levels a function branch starts at the next turn instead of in
-- place). This is an await.
-- @usage local i, msg = quench.select(inbox:recv_op(), quench.sleep_op(1))
function quench.select(...) end

--- As `quench.select`, but branches are polled in argument order.
--
-- An always-ready early branch starves the later ones: use it to give
-- priority (a shutdown signal before work).
--
-- **Cancel safety.** As `quench.select`.
--
-- @param ... branches: functions or ops, at least one
-- @treturn integer the index of the winning branch
-- @return ... the winner's results
-- @raise as `quench.select`. This is an await.
function quench.select_biased(...) end

--- Select with a default (Go's `select` with `default:`): the index and
-- results of the first branch that is ready now, in argument order, or nil
-- when none is. Never suspends for a branch: a function branch that would
-- wait is dropped.
--
-- **Cancel safety.** As `quench.select_biased`: every branch but the
-- winner is dropped, and a dropped branch loses what its op loses (nothing,
-- for receives, acquires and sleeps).
--
-- @param ... branches: functions or ops, at least one
-- @treturn ?integer the index of the ready branch, or nil
-- @return ... its results
-- @raise `quench.try_select: needs at least one branch`; as
-- `quench.select_biased`. This is an await (it never waits, but it is a
-- cancellation point).
function quench.try_select(...) end

--- Run a branch against a deadline `s` seconds away.
--
-- A biased select of the branch and `sleep_op(s)`: the branch is polled
-- first, so it wins a tie, and `timeout(0, f)` returns `true` when `f`
-- finishes without awaiting. Nested timeouts: the earliest deadline wins.
-- Nothing is spawned.
--
-- **Cancel safety.** On expiry the branch is dropped (cleanup run, earlier
-- side effects kept). Dropping the timeout itself drops the branch and the
-- timer. On expiry `false, Timeout` is returned.
--
-- @tparam number s seconds
-- @tparam function|Op branch a function or an op
-- @param ... arguments for a function branch
-- @treturn boolean `true` if the branch finished in time
-- @return ... the branch's results, or a Timeout value (`kind ==
-- "timeout"`, see `quench.is_timeout`)
-- @raise the branch's error; bad arguments; `Cancelled` in a cancelled
-- task. It does not raise on expiry. This is an await.
-- @usage local ok, res = quench.timeout(2, fetch, url)
function quench.timeout(s, branch, ...) end

--- As `quench.timeout`, with an absolute time `t` on the `quench.now()` scale.
--
-- One deadline can bound several steps: each gets what is left of it.
--
-- **Cancel safety.** As `quench.timeout`.
--
-- @tparam number t the deadline, in `quench.now()` seconds
-- @tparam function|Op branch a function or an op
-- @param ... arguments for a function branch
-- @treturn boolean `true` if the branch finished in time
-- @return ... the branch's results, or a Timeout value
-- @raise as `quench.timeout`. This is an await.
function quench.deadline(t, branch, ...) end

--- An op that runs `fn(...)` when awaited or selected, as a branch of the
-- task that awaits it: how a wait written in Lua gets an op form
-- (`interval:tick_op()`, `limiter:acquire_op()` are made this way). Like
-- every op it is single-use and starts only when awaited or selected.
--
-- **Cancel safety.** The cancel safety of `fn`'s pending wait: dropped (it
-- lost a select, a timeout expired, its task was aborted), the branch is
-- dropped as any select loser is: its `<close>` variables run, and what
-- `fn` did before its current await stays done.
--
-- @tparam function fn the wait
-- @param ... its arguments
-- @treturn Op the op (its await returns what `fn` returns)
-- @raise `bad argument #1 to 'quench.op' (function expected, ...)`; awaiting
-- it past the nesting limit raises as `quench.select` does
function quench.op(fn, ...) end

--- An operation (`quench.op`): a single-use future made by an `x_op`
-- function and started only when awaited or selected.
-- `tostring(op)` is `quench.op (sleep)`, `quench.op (recv, used)`.
-- @type Op

--- Wait on the op and return its results (those of the waiting function it
-- stands for).
--
-- **Cancel safety.** The cancel safety of the op awaited.
--
-- @return ... the op's results
-- @raise `quench.op:await: this <kind> op was already used (ops are
-- single-use)`; the op's own errors; outside a task; `Cancelled` in a
-- cancelled task. This is an await.
function Op:await() end
