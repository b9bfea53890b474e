--- Error values: Cancelled and Timeout.
--
-- quench's own error values are tables with a `kind` field and a
-- `__tostring`; their metatables are named `quench.error` (`__name`), one
-- per kind, and `kind` (and a Timeout's `message`) is read through the
-- metatable, so making one costs a bare table:
--
-- * **Cancelled**: `{kind = "cancelled", reason = r}`; `tostring` is
--   `cancelled: <reason>`, or `cancelled` without one. What `h:join()`
--   returns for an aborted or cancelled task, what an await raises in a
--   cancelled task, what `t:run` returns when its token wins.
-- * **Timeout**: `{kind = "timeout", message = "deadline elapsed"}`; what
--   `quench.timeout` and `quench.deadline` return on expiry (they do not
--   raise it).
-- * **Multiple** (from `quench.scope`): `{kind = "multiple", error = first,
--   errors = {...}}`.
--
-- Other failures follow Lua's conventions: misuse raises a message naming
-- the function; an expected I/O failure is returned as `nil, message, code`.
-- @module errors

--- Whether `e` is a Cancelled value.
--
-- **Cancel safety.** Not an await.
--
-- @param e any value
-- @treturn boolean `true` for a Cancelled value
-- @raise never
function quench.is_cancelled(e) end

--- Whether `e` is a Timeout value.
--
-- **Cancel safety.** Not an await.
--
-- @param e any value
-- @treturn boolean `true` for a Timeout value
-- @raise never
function quench.is_timeout(e) end

--- A new Cancelled value, e.g. to raise by hand (`error(quench.cancelled_error("stop"))`).
--
-- **Cancel safety.** Not an await.
--
-- @param[opt] reason the reason
-- @treturn table a Cancelled value
-- @raise never
function quench.cancelled_error(reason) end

--- A new Timeout value (what a scope with a deadline raises, and the reason
-- its children see).
--
-- **Cancel safety.** Not an await.
--
-- @return a Timeout value
-- @raise never
function quench.timeout_error() end
