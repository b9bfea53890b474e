--- Cancellation tokens: a flag in a tree.
--
-- `t:cancel()` cancels `t` and all its descendants, never an ancestor; the
-- first reason is kept. A child made under a cancelled parent is born
-- cancelled. Tokens can be made and cancelled outside `quench.run`. Two
-- ways to use one: bind tasks (`t:spawn`: cancelled gracefully with the
-- token) or observe it (`t:cancelled()`, `t:cancelled_op()`, `t:run`,
-- `t:is_cancelled()`). Guide:
-- [docs/cancellation.md](../../cancellation.md#13-tokens-quenchtoken).
-- @module tokens

--- A new root token.
--
-- **Cancel safety.** Not an await.
--
-- @treturn Token the token
-- @raise never
function quench.token() end

--- A token cancelled when any of the given tokens is.
--
-- A new root token: its reason is the reason of the source that cancelled
-- it; it is born cancelled if a source already is. Cancelling it never
-- cancels a source, and removes its registrations on the sources (so cancel
-- a linked token, or hold its guard, when it is no longer needed: until
-- then each source keeps it).
--
-- **Cancel safety.** Not an await.
--
-- @param ... one or more tokens
-- @treturn Token the linked token
-- @raise `bad argument #i to 'token_any' (quench.token expected, ...)`
function quench.token_any(...) end

--- A cancellation token (`quench.token`). `tostring(t)` is
-- `quench.token (active)` or `quench.token (cancelled)`.
-- @type Token

--- Cancel the token and its whole subtree.
--
-- Idempotent: the first reason is kept. Tasks bound with `t:spawn` (to it
-- or a descendant) are cancelled gracefully with the reason.
--
-- **Cancel safety.** Not an await.
--
-- @param[opt] reason any value, returned by `t:reason()`
-- @treturn boolean `true` if this call cancelled it, `false` if it already was
-- @raise `bad argument #1 to 'cancel' (quench.token expected, ...)`
function Token:cancel(reason) end

--- Whether the token is cancelled (a field read).
--
-- **Cancel safety.** Not an await.
--
-- @treturn boolean cancelled or not
-- @raise on a bad self
function Token:is_cancelled() end

--- The reason given where the cancel that reached this token started.
--
-- **Cancel safety.** Not an await.
--
-- @return the reason, or nil (not cancelled, or cancelled without one)
-- @raise on a bad self
function Token:reason() end

--- Wait until the token is cancelled; return the reason.
--
-- Returns at once if it already is. In a task bound to this token the wait
-- raises `Cancelled` instead (the task is cancelled with it): bound tasks
-- learn of the cancel by the error.
--
-- **Cancel safety.** Cancel-safe: dropping stops the wait and nothing else;
-- a token stays cancelled. A later `t:cancelled()` returns at once.
--
-- @return the reason (possibly nil)
-- @raise outside a task; `Cancelled` in a cancelled task. This is an await.
function Token:cancelled() end

--- The op of `cancelled`, for select and timeout.
--
-- **Cancel safety.** As `cancelled`.
--
-- @treturn Op an op returning the reason
-- @raise on a bad self
function Token:cancelled_op() end

--- A child token: cancelled with this one, never the reverse.
--
-- A child keeps its parent alive; a parent does not keep its children.
--
-- **Cancel safety.** Not an await.
--
-- @treturn Token the child (cancelled already if this token is)
-- @raise on a bad self
function Token:child() end

--- A `<close>` value that cancels the token (with no reason) at scope exit.
--
-- **Cancel safety.** Not an await.
--
-- @return the guard, to hold in a `<close>` variable
-- @raise on a bad self
function Token:guard() end

--- Run `fn(...)` in the caller until it returns or the token is cancelled.
--
-- `fn` runs as a child coroutine (like a select branch). An already
-- cancelled token never starts `fn`; when both are ready together the
-- token wins.
--
-- **Cancel safety.** Like a timeout: when the token wins, `fn` is dropped
-- with its cleanup run, and what it did before its current await stays
-- done. If `t:run` itself is dropped, `fn` is dropped with it.
--
-- @tparam function fn the work
-- @param ... its arguments
-- @treturn boolean `true` if `fn` finished, `false` if the token was cancelled
-- @return ... `fn`'s results, or a Cancelled value with the token's reason
-- @raise `fn`'s error; `bad argument #2 to 'run' (function expected, ...)`;
-- outside a task; `Cancelled` in a cancelled task. This is an await.
function Token:run(fn, ...) end

--- Spawn a task bound to the token: cancelled gracefully (as `h:cancel`)
-- when the token is, with the token's reason.
--
-- A task bound to an already-cancelled token starts cancelled (it runs
-- until its first await).
--
-- **Cancel safety.** Not an await (as `quench.spawn`).
--
-- @tparam function fn the task's function
-- @param ... its arguments
-- @treturn Task the handle
-- @raise `quench.token:spawn: not inside quench.run`; a bad `fn`.
function Token:spawn(fn, ...) end

--- Register `fn(reason)` to run when the token is cancelled.
--
-- `fn` runs synchronously, before the `t:cancel` (or guard) that reached the
-- token returns, also when the cancel started at an ancestor; at once, in
-- the caller, if the token is already cancelled (then its error is the
-- caller's). It runs at most once. A callback that raises is reported as a
-- warning (`opts.on_warning`, or stderr) and stops neither the cancel nor
-- the other callbacks. Callbacks run in the order their tokens were reached,
-- and on one token in the order they were registered. This is how a
-- callback or handle API (a libuv handle, a child job) is wrapped so that a
-- cancel stops it. `fn` cannot wait (it runs inside `t:cancel`): an await
-- in it raises, and is reported as its error is. The registration lives as
-- long as the token: hold the token.
--
-- **Cancel safety.** Not an await.
--
-- @tparam function fn called as `fn(reason)`
-- @treturn CancelRegistration the registration (`<close>` removes it)
-- @raise `bad argument #1 to 'on_cancel' (function expected, ...)`; `fn`'s
-- error when the token is already cancelled
function Token:on_cancel(fn) end

--- What `t:on_cancel` returns. `tostring` says `armed` or `spent`.
-- @type CancelRegistration

--- Unregister: the callback will not run.
--
-- Also when the cancel has started and the callback has not run yet (an
-- earlier callback of the same cancel may remove a later one). `__close` is
-- `remove`.
--
-- **Cancel safety.** Not an await.
--
-- @treturn boolean `true` if this call kept the callback from running,
-- `false` if it had already run or been removed
-- @raise on a bad self
function CancelRegistration:remove() end
