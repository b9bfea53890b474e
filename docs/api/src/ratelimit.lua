--- Rate limiting and retries: a token bucket and a backoff helper.
--
-- Pure Lua (`lua/quench/time.lua`) over `quench.sleep_until` and select.
-- Guide: [docs/time.md](../../time.md).
-- @module ratelimit

--- A token-bucket rate limiter: refilled at `opts.rate` tokens a second,
-- holding at most `opts.burst` (default 1), starting with `opts.initial`
-- (default: full). Acquires are served in order (FIFO), so a large request
-- is not starved by small ones.
--
-- **Cancel safety.** Not an await.
--
-- @tparam table opts `rate` (tokens a second, `> 0`), `burst` (`>= 1`),
-- `initial` (from 0 to `burst`)
-- @treturn RateLimiter the limiter
-- @raise `bad argument #1 to 'rate_limiter' (opts.rate must be ...)`,
-- `(opts.burst must be ...)`, `(opts.initial must be ...)`, `(unknown option '...')`
function quench.rate_limiter(opts) end

--- Call `fn()` until it returns without raising, sleeping an exponential
-- backoff between attempts; return its results.
--
-- The `k`-th delay is `base * factor^(k-1)`, capped at `max_delay`, then
-- jittered: `"full"` (default: a uniform draw from 0 to the delay),
-- `"equal"` (half the delay plus a draw over the other half) or `"none"`.
-- Draws use `math.random`. It gives up and raises the last error after
-- `attempts` tries (default 5; `math.huge`: no limit), when
-- `retry_if(err, attempt)` returns false, or at the deadline (`deadline`, a
-- `quench.now()` time, or `timeout` seconds): no sleep is taken that would
-- end past it, and an attempt still running at the deadline is dropped and
-- a Timeout value raised. `on_retry(err, attempt, delay)` is called before
-- each sleep. A `Cancelled` error is never retried.
--
-- **Cancel safety.** Stops at once when cancelled: a cancel raises from the
-- attempt or the backoff sleep, and no further attempt starts. Dropping it
-- drops the attempt in progress (its cleanup runs).
--
-- * before it waits: nothing started
-- * while waiting: the attempt in progress (or the backoff sleep) is dropped
-- * given, not resumed: `fn`'s results are lost with the call
--
-- @tparam function fn the attempt, called with no arguments
-- @tparam[opt] table opts `attempts`, `base` (seconds, default 0.1),
-- `factor` (default 2), `max_delay` (seconds, default 30), `jitter`,
-- `deadline` or `timeout`, `retry_if`, `on_retry`
-- @return ... `fn`'s results
-- @raise the last error of `fn`; a Timeout value at the deadline; `bad
-- argument #1 to 'retry' (function expected, ...)`; `bad argument #2 to
-- 'retry' (opts.x must be ...)`, `(unknown option '...')`; `Cancelled` in a
-- cancelled task. This is an await.
function quench.retry(fn, opts) end

--- A token bucket (`quench.rate_limiter`).
-- @type RateLimiter

--- Wait until `n` tokens can be taken (after the acquires already waiting);
-- take them.
--
-- **Cancel safety.** Cancel-safe: tokens are taken only when `acquire`
-- returns, with no await between the check and the take, so a cancelled or
-- dropped acquire never holds a token, and it leaves the queue so the next
-- waiter goes on.
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken; its place in the queue is given up
-- * given, not resumed: nothing taken (the take happens on resumption)
--
-- @tparam[opt] number n tokens, `> 0` and at most the burst (default 1)
-- @raise `bad argument #1 to 'acquire' (tokens must be ...)`; outside a
-- task; `Cancelled` in a cancelled task. This is an await.
function RateLimiter:acquire(n) end

--- The op of `acquire(n)` (`quench.op(limiter.acquire, limiter, n)`).
--
-- **Cancel safety.** As `acquire`.
--
-- @tparam[opt] number n tokens (default 1)
-- @treturn Op an op returning what `acquire` returns
-- @raise `bad argument #1 to 'acquire_op' (tokens must be ...)`
function RateLimiter:acquire_op(n) end

--- Take `n` tokens if the bucket has them and nobody waits; never waits.
--
-- **Cancel safety.** Not an await.
--
-- @tparam[opt] number n tokens (default 1)
-- @treturn boolean whether they were taken
-- @raise `bad argument #1 to 'try_acquire' (tokens must be ...)`
function RateLimiter:try_acquire(n) end

--- The tokens in the bucket now (a float, refill included).
--
-- **Cancel safety.** Not an await.
--
-- @treturn number tokens
-- @raise on a bad self
function RateLimiter:available() end
