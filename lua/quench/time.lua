-- Time sugar on quench.sleep_until: intervals with a missed-tick policy,
-- resettable timers, a token-bucket rate limiter and a retry helper.
--
-- Every wait here is a loop of plain quench awaits whose state changes only
-- after the await returned and before the next one, with no await in
-- between: a wait dropped at any point (a select, a timeout, a cancel) has
-- changed nothing. That is the whole cancel-safety argument of this file.
local quench = ...

local function typename(v)
  return type(v) == "number" and tostring(v) or type(v)
end

local function check_self(self, cls, tname, name)
  if getmetatable(self) ~= cls then
    error("bad argument #1 to '" .. name .. "' (" .. tname .. " expected, got " .. type(self)
      .. "; call it with a colon: x:" .. name .. "(...))", 3)
  end
end

local function check_positive(v, fname, what, argn)
  if math.type(v) == nil or v ~= v or v <= 0 or v == math.huge then
    error("bad argument #" .. argn .. " to '" .. fname .. "' (" .. what
      .. " must be a positive number of seconds, got " .. typename(v) .. ")", 3)
  end
end

local function check_opts(opts, fname, argn, known)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error("bad argument #" .. argn .. " to '" .. fname .. "' (table expected, got " .. type(opts) .. ")", 3)
  end
  for k in pairs(opts) do
    if not known[k] then
      error("bad argument #" .. argn .. " to '" .. fname .. "' (unknown option '" .. tostring(k) .. "')", 3)
    end
  end
  return opts
end

---------------------------------------------------------------------------
-- Intervals
---------------------------------------------------------------------------

local Interval = { __name = "quench.interval" }
Interval.__index = Interval

-- A tick later than this behind its schedule counts as missed (tokio's
-- figure): a real clock always wakes a little late, and that is not a miss.
local LATE = 0.005

local MISSED = { burst = true, delay = true, skip = true }

local function check_missed(m, fname, argn)
  if not MISSED[m] then
    error("bad argument #" .. argn .. " to '" .. fname
      .. "' (missed must be \"burst\", \"delay\" or \"skip\", got " .. typename(m) .. ")", 3)
  end
end

--- quench.interval(period [, opts]): ticks every period seconds. opts.start:
-- the time of the first tick (default: now, so the first tick is at once);
-- opts.missed: "burst" (default), "delay" or "skip".
function quench.interval(period, opts)
  check_positive(period, "interval", "the period", 1)
  opts = check_opts(opts, "interval", 2, { start = true, missed = true })
  local missed = opts.missed or "burst"
  check_missed(missed, "interval", 2)
  local start = opts.start
  if start ~= nil and (math.type(start) == nil or start ~= start) then
    error("bad argument #2 to 'interval' (opts.start must be a number (a quench.now() time), got "
      .. typename(start) .. ")", 2)
  end
  return setmetatable({ period = period, missed = missed, next = start or quench.now() }, Interval)
end

-- The tick scheduled at `at` happened at `now`: schedule the next one.
local function advance(iv, at, now)
  local p = iv.period
  if now - at <= LATE or iv.missed == "burst" then
    iv.next = at + p
  elseif iv.missed == "delay" then
    iv.next = now + p
  else                                  -- skip: the next tick of the schedule after now
    iv.next = at + (math.floor((now - at) / p) + 1) * p
  end
end

--- Wait for the next tick; return the time it was scheduled for.
function Interval:tick()
  check_self(self, Interval, "quench.interval", "tick")
  local at = self.next
  quench.sleep_until(at)
  advance(self, at, quench.now())       -- no await since the sleep: a drop changed nothing
  return at
end

--- The tick as an op (quench.op: a branch when awaited or selected): a
--- dropped one consumes no tick.
function Interval:tick_op()
  check_self(self, Interval, "quench.interval", "tick_op")
  return quench.op(self.tick, self)
end

--- Restart the schedule: the next tick is one period from now.
function Interval:reset()
  check_self(self, Interval, "quench.interval", "reset")
  self.next = quench.now() + self.period
end

--- The time of the next tick.
function Interval:next_tick()
  check_self(self, Interval, "quench.interval", "next_tick")
  return self.next
end

function Interval:set_missed(m)
  check_self(self, Interval, "quench.interval", "set_missed")
  check_missed(m, "set_missed", 1)
  self.missed = m
end

Interval.__tostring = function(self)
  return "quench.interval (" .. self.period .. " s, " .. self.missed .. ")"
end

---------------------------------------------------------------------------
-- Timers
---------------------------------------------------------------------------

local Timer = { __name = "quench.timer" }
Timer.__index = Timer

local function check_time(t, fname, argn)
  if math.type(t) == nil or t ~= t then
    error("bad argument #" .. argn .. " to '" .. fname .. "' (a quench.now() time expected, got "
      .. typename(t) .. ")", 3)
  end
end

local function check_duration(s, fname, argn)
  if math.type(s) == nil or s ~= s or s < 0 then
    error("bad argument #" .. argn .. " to '" .. fname
      .. "' (seconds must be a number >= 0, got " .. typename(s) .. ")", 3)
  end
end

--- quench.timer(s): a timer elapsing s seconds from now; reset moves it.
function quench.timer(s)
  check_duration(s, "timer", 1)
  return setmetatable({ duration = s, at = quench.now() + s, moved = quench.notify() }, Timer)
end

--- Wait until the timer has elapsed (at once if it has). A reset while
-- waiting, from any task, moves the wait to the new deadline.
function Timer:wait()
  check_self(self, Timer, "quench.timer", "wait")
  while quench.now() < self.at do
    quench.select_biased(quench.sleep_until_op(self.at), self.moved:notified_op())
  end
end

--- The wait as an op (quench.op).
function Timer:wait_op()
  check_self(self, Timer, "quench.timer", "wait_op")
  return quench.op(self.wait, self)
end

--- Move the deadline to s seconds from now (default: the timer's duration).
function Timer:reset(s)
  check_self(self, Timer, "quench.timer", "reset")
  if s ~= nil then check_duration(s, "reset", 1) else s = self.duration end
  self.at = quench.now() + s
  self.moved:notify_all()
end

--- Move the deadline to the time t.
function Timer:reset_at(t)
  check_self(self, Timer, "quench.timer", "reset_at")
  check_time(t, "reset_at", 1)
  self.at = t
  self.moved:notify_all()
end

function Timer:deadline()
  check_self(self, Timer, "quench.timer", "deadline")
  return self.at
end

function Timer:is_elapsed()
  check_self(self, Timer, "quench.timer", "is_elapsed")
  return quench.now() >= self.at
end

Timer.__tostring = function(self)
  return "quench.timer (deadline " .. self.at .. ")"
end

---------------------------------------------------------------------------
-- Rate limiting: a token bucket
---------------------------------------------------------------------------

local Limiter = { __name = "quench.rate_limiter" }
Limiter.__index = Limiter

--- quench.rate_limiter{rate = r, burst = b [, initial = i]}: a token bucket
-- refilled at r tokens a second, holding at most b (initially i, default b).
function quench.rate_limiter(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'rate_limiter' (table expected, got " .. type(opts) .. ")", 2)
  end
  check_opts(opts, "rate_limiter", 1, { rate = true, burst = true, initial = true })
  local rate, burst = opts.rate, opts.burst or 1
  if math.type(rate) == nil or rate ~= rate or rate <= 0 or rate == math.huge then
    error("bad argument #1 to 'rate_limiter' (opts.rate must be a positive number of tokens "
      .. "a second, got " .. typename(rate) .. ")", 2)
  end
  if math.type(burst) == nil or burst ~= burst or burst < 1 or burst == math.huge then
    error("bad argument #1 to 'rate_limiter' (opts.burst must be a number >= 1, got "
      .. typename(burst) .. ")", 2)
  end
  local initial = opts.initial or burst
  if math.type(initial) == nil or not (initial >= 0 and initial <= burst) then
    error("bad argument #1 to 'rate_limiter' (opts.initial must be a number from 0 to the burst, got "
      .. typename(initial) .. ")", 2)
  end
  return setmetatable({ rate = rate, burst = burst, tokens = initial, stamp = quench.now(),
    queue = {}, head = 1, tail = 0, wake = quench.notify() }, Limiter)
end

local function refill(lim)
  local now = quench.now()
  local t = lim.tokens + (now - lim.stamp) * lim.rate
  lim.tokens = t < lim.burst and t or lim.burst
  lim.stamp = now
end

local function check_n(lim, n, fname)
  if n == nil then return 1 end
  if math.type(n) == nil or n ~= n or n <= 0 or n > lim.burst then
    error("bad argument #1 to '" .. fname .. "' (tokens must be a number > 0 and at most the burst ("
      .. lim.burst .. "), got " .. typename(n) .. ")", 3)
  end
  return n
end

-- Whether some earlier acquire waits: tokens go to the waiters in order.
local function first_waiter(lim)
  while lim.head <= lim.tail and lim.queue[lim.head] == nil do lim.head = lim.head + 1 end
  return lim.queue[lim.head]
end

--- Take n tokens now if the bucket has them and nobody waits before us.
function Limiter:try_acquire(n)
  check_self(self, Limiter, "quench.rate_limiter", "try_acquire")
  n = check_n(self, n, "try_acquire")
  refill(self)
  if first_waiter(self) == nil and self.tokens >= n then
    self.tokens = self.tokens - n
    return true
  end
  return false
end

-- Leaves the queue however the acquire ends, and lets the next waiter look.
local Leave = { __close = function(w)
  local lim = w.lim
  lim.queue[w.slot] = nil
  lim.wake:notify_all()
end }

--- Wait until n tokens (default 1) can be taken, in FIFO order; take them.
function Limiter:acquire(n)
  check_self(self, Limiter, "quench.rate_limiter", "acquire")
  n = check_n(self, n, "acquire")
  if self:try_acquire(n) then return end
  self.tail = self.tail + 1
  local me = { lim = self, slot = self.tail }
  self.queue[me.slot] = me
  local _leave <close> = setmetatable(me, Leave)
  while true do
    refill(self)
    if first_waiter(self) == me then
      if self.tokens >= n then
        self.tokens = self.tokens - n   -- taken with no await after: a drop never holds tokens
        return
      end
      quench.select_biased(self.wake:notified_op(),
        quench.sleep_op((n - self.tokens) / self.rate))
    else
      self.wake:notified()
    end
  end
end

--- The acquire as an op (quench.op).
function Limiter:acquire_op(n)
  check_self(self, Limiter, "quench.rate_limiter", "acquire_op")
  n = check_n(self, n, "acquire_op")
  return quench.op(self.acquire, self, n)
end

--- The tokens in the bucket now (a float).
function Limiter:available()
  check_self(self, Limiter, "quench.rate_limiter", "available")
  refill(self)
  return self.tokens
end

Limiter.__tostring = function(self)
  return "quench.rate_limiter (" .. self.rate .. "/s, burst " .. self.burst .. ")"
end

---------------------------------------------------------------------------
-- Retry
---------------------------------------------------------------------------

local RETRY_OPTS = { attempts = true, base = true, factor = true, max_delay = true, jitter = true,
  deadline = true, timeout = true, retry_if = true, on_retry = true }

local function opt_number(opts, k, dflt, ok, what)
  local v = opts[k]
  if v == nil then return dflt end
  if math.type(v) == nil or v ~= v or not ok(v) then
    error("bad argument #2 to 'retry' (opts." .. k .. " must be " .. what .. ", got "
      .. typename(v) .. ")", 3)
  end
  return v
end

--- quench.retry(fn [, opts]): call fn() until it returns without raising;
-- between attempts sleep a backoff (base * factor^(k-1), capped at
-- max_delay, jittered). Gives up, raising the last error, after opts.attempts
-- tries, past opts.deadline/timeout, or when opts.retry_if(err, attempt) is
-- false. A Cancelled error is never retried.
function quench.retry(fn, opts)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'retry' (function expected, got " .. type(fn) .. ")", 2)
  end
  opts = check_opts(opts, "retry", 2, RETRY_OPTS)
  local attempts = opt_number(opts, "attempts", 5, function(v) return v >= 1 end,
    "a number >= 1 (math.huge: no limit)")
  local base = opt_number(opts, "base", 0.1, function(v) return v >= 0 end, "a number of seconds >= 0")
  local factor = opt_number(opts, "factor", 2, function(v) return v >= 1 end, "a number >= 1")
  local max_delay = opt_number(opts, "max_delay", 30, function(v) return v >= 0 end,
    "a number of seconds >= 0")
  local jitter = opts.jitter
  if jitter == nil then jitter = "full" end
  if jitter ~= "full" and jitter ~= "none" and jitter ~= "equal" then
    error("bad argument #2 to 'retry' (opts.jitter must be \"full\", \"equal\" or \"none\", got "
      .. typename(jitter) .. ")", 2)
  end
  if opts.deadline ~= nil and opts.timeout ~= nil then
    error("bad argument #2 to 'retry' (give opts.timeout or opts.deadline, not both)", 2)
  end
  local deadline = opt_number(opts, "deadline", nil, function() return true end, "a quench.now() time")
  local timeout = opt_number(opts, "timeout", nil, function(v) return v >= 0 end,
    "a number of seconds >= 0")
  if timeout then deadline = quench.now() + timeout end
  for _, k in ipairs({ "retry_if", "on_retry" }) do
    if opts[k] ~= nil and type(opts[k]) ~= "function" then
      error("bad argument #2 to 'retry' (opts." .. k .. " must be a function, got "
        .. type(opts[k]) .. ")", 2)
    end
  end
  local attempt = 0
  while true do
    attempt = attempt + 1
    local r
    if deadline then
      r = table.pack(pcall(quench.deadline, deadline, fn))
      if r[1] then                       -- unwrap deadline's own true/false
        if r[2] then
          r = table.pack(true, table.unpack(r, 3, r.n))
        else
          r = { false, r[3], n = 2 }     -- the Timeout: the time is up
        end
      end
    else
      r = table.pack(pcall(fn))
    end
    if r[1] then return table.unpack(r, 2, r.n) end
    local err = r[2]
    if quench.is_cancelled(err) or attempt >= attempts
      or (deadline and quench.now() >= deadline)
      or (opts.retry_if and not opts.retry_if(err, attempt)) then
      error(err, 0)
    end
    local delay = base * factor ^ (attempt - 1)
    if delay > max_delay then delay = max_delay end
    if jitter == "full" then
      delay = delay * math.random()
    elseif jitter == "equal" then
      delay = delay / 2 + delay / 2 * math.random()
    end
    if deadline and quench.now() + delay >= deadline then error(err, 0) end
    if opts.on_retry then opts.on_retry(err, attempt, delay) end
    quench.sleep(delay)                  -- a cancel raises here: no further attempt
  end
end
