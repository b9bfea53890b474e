--- quench.pool: idle connections kept for reuse (`require "quench.pool"`).
--
-- Keyed by destination: host and port, or a Unix socket's path, and the
-- TLS parameters. Bounded per key, with an idle timeout on the runtime's
-- clock. Cancel-safe by construction: nothing here waits, and a
-- connection with unread bytes, or that the peer wrote to or closed while
-- idle, or that its caller marks dubious, is closed, never handed out.
-- The OpenResty facade (`quench.ngx`) keeps its connections here. Guide:
-- [docs/io.md](../../io.md#connection-pool).
-- @module pool

--- The key of a destination.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string host a host name or address, or `"unix:/path"`
-- @tparam[opt] integer port the port (absent for a Unix socket)
-- @tparam[opt] table|boolean tls TLS parameters: their string, number and
-- boolean fields are appended in sorted order; `true` appends `|tls`
-- @treturn string `"host:port"`, `"unix:/path"`,
-- `"host:port|tls|server_name=x|verify=true"`
-- @raise `quench.pool.key: bad argument #1 (host or unix:path string
-- expected, got ...)`
-- @usage pool.key("127.0.0.1", 6379)  --> "127.0.0.1:6379"
function pool.key(host, port, tls) end

--- Take the most recently idle connection of `key`.
--
-- Connections past their idle time, of a runtime that has ended, or that
-- the peer closed or wrote to while idle are closed and skipped.
--
-- **Cancel safety.** Never waits: nothing to drop. Checking a connection
-- is a biased select of `read_some_op(1)` and a zero sleep that completes
-- without suspending (a ready read wins; otherwise it is dropped with
-- nothing read).
--
-- @tparam string key from `pool.key` (or any string)
-- @treturn ?Stream the connection, or nil
-- @treturn ?integer how many times it was taken, this time included
-- @return the `data` given with it
-- @raise outside a runtime
function pool.take(key) end

--- Put an idle connection back for `key`.
--
-- Refused, and closed, when bytes wait unread, when the peer wrote or
-- closed, when it is closed or of an ended runtime, or when `opts.dubious`
-- is set. When `key` already keeps `size` idle connections, the oldest is
-- closed.
--
-- **Cancel safety.** Never waits: nothing to drop.
--
-- @tparam string key from `pool.key`
-- @param stream a quench stream
-- @tparam[opt] table opts `idle` (seconds, default 60, `0` for no limit),
-- `size` (default 30), `reused` (the count `take` returned), `data` (kept
-- and returned by `take`), `dubious` (a reason to refuse it)
-- @treturn ?boolean `true`
-- @treturn ?string why it was refused: `"unread data in buffer"`,
-- `"connection in dubious state"`, `"closed"`, or `opts.dubious`
-- @raise `quench.pool.give: bad argument #1 (key string expected, got
-- ...)`; `quench.pool.give: opts.idle must be a number of seconds >= 0`;
-- `quench.pool.give: opts.size must be an integer >= 1`; outside a runtime
function pool.give(key, stream, opts) end

--- How many idle connections `key` keeps (all keys without one).
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt] string key
-- @treturn integer the count (expired ones are not counted)
-- @raise outside a runtime
function pool.count(key) end

--- Close the idle connections of `key` (of every key without one).
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt] string key
-- @raise never
function pool.clear(key) end
