-- A poller that ticks on a fixed schedule (skipping ticks it missed while a
-- slow poll ran), calls a flaky service through a token-bucket rate limiter
-- and retries with exponential backoff, and debounces the change events it
-- sees with one resettable timer. Runs on the virtual clock: exact output.
local quench = require "quench"

local function log(fmt, ...) print(string.format("[%5.2f s] " .. fmt, quench.now(), ...)) end

quench.run({ clock = "virtual" }, function()
  local limiter = quench.rate_limiter({ rate = 2, burst = 1 })
  local calls = 0
  local function flaky_fetch()
    limiter:acquire()                              -- at most 2 calls a second
    calls = calls + 1
    if calls % 3 == 1 then error("503 from service", 0) end
    return calls
  end

  local changes = quench.channel(8)
  local ticker = quench.interval(1, { missed = "skip" })
  local poller = quench.spawn(function()
    for _ = 1, 4 do
      local at = ticker:tick()
      local v = quench.retry(flaky_fetch, { base = 0.25, jitter = "none", attempts = 3,
        on_retry = function(err, k, d) log("poll: attempt %d failed (%s), again in %.2f s", k, err, d) end })
      log("poll scheduled at %.2f got %d", at, v)
      changes:send(v)
      if v == 3 then quench.sleep(2.6) end         -- slow: the 2.00 tick comes late, 3.00 is skipped
    end
    changes:close()
  end)

  local quiet = quench.timer(0.75)                 -- act once changes stop for 0.75 s
  local pending = 0
  while true do
    local i, v = quench.select(changes:recv_op(), quiet:wait_op())
    if i == 1 and v == nil then                    -- the poller is done
      if pending > 0 then log("closing: %d change(s) applied", pending) end
      break
    end
    if i == 1 then
      pending = pending + 1
      quiet:reset()
    elseif pending > 0 then
      log("debounced: %d change(s) applied", pending)
      pending = 0
      quiet:reset()
    else
      quiet:reset()
    end
  end
  poller:join()
  log("done after %d calls", calls)
end)
