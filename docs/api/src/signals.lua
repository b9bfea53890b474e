--- Signals: wait for SIGINT, SIGTERM and friends.
--
-- The first wait for a signal installs the runtime's watcher for it, which
-- stays until the runtime ends: from then on the signal's default action
-- (such as terminating on SIGINT) no longer happens. A delivery with nobody
-- waiting is counted for the next wait. Guide:
-- [docs/signals.md](../../signals.md), example
-- `examples/graceful_shutdown.lua`.
-- @module signals

--- Wait for the next delivery of a signal; return its name.
--
-- **Cancel safety.** Cancel-safe: a dropped wait loses nothing; a delivery
-- with nobody waiting is kept for the next wait.
--
-- @tparam string name `"SIGINT"`, `"SIGTERM"`, `"SIGHUP"`, `"SIGQUIT"`,
-- `"SIGUSR1"`, `"SIGUSR2"` or `"SIGWINCH"`
-- @treturn ?string the name, or nil
-- @treturn ?string `"cannot watch <name>"` if the watcher could not be installed
-- @raise `bad argument #1 to 'signal' (unknown signal ...)`; outside a task;
-- `Cancelled` in a cancelled task. This is an await.
-- @usage quench.select(quench.signal_op("SIGINT"), quench.signal_op("SIGTERM"))
function quench.signal(name) end

--- The op of `signal(name)`.
--
-- **Cancel safety.** As `signal`.
--
-- @tparam string name the signal's name
-- @treturn Op an op returning what `signal` returns
-- @raise `bad argument #1 to 'signal_op' (unknown signal ...)`
function quench.signal_op(name) end
