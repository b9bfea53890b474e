-- A request handler with a deadline that reaches every task it started as a
-- graceful cancel: the workers get a grace period to flush, the nested scope
-- waits out its own grace, a failed replica does not stop its siblings
-- (supervisor), and the first healthy replica wins a hedged read
-- (first_success). A request id travels to every task (quench.context).
-- Runs on the virtual clock: the output is exact.
local quench = require "quench"

local REQUEST = quench.context.key("request id")

local function log(fmt, ...)
  print(string.format("[%5.2f s] %s: " .. fmt, quench.now(),
    quench.context.get(REQUEST, "-"), ...))
end

local function replica(name, delay, healthy)
  return function()
    quench.sleep(delay)
    if not healthy then error(name .. " is down", 0) end
    return name
  end
end

local function worker(i)
  local ok = pcall(quench.sleep, 10 * i)          -- longer than the deadline
  if not ok then
    log("worker %d: cancelled, flushing", i)
    quench.shield(quench.sleep, 0.5)              -- within the grace
    log("worker %d: flushed", i)
  end
end

quench.run({ clock = "virtual" }, function()
  quench.context.with(REQUEST, "req-7", function()
    local ok, err = pcall(quench.scope, { timeout = 3, grace = 1 }, function(s)
      log("deadline %.2f s", quench.current_deadline())
      local i, who = quench.first_success(replica("a", 0.2, false), replica("b", 0.5, true),
        replica("c", 0.9, true))
      log("read from replica %s (branch %d)", who, i)
      quench.scope({ supervise = true, on_failure = function(e) log("child failed: %s", e) end },
        function(inner)
          inner:spawn(function() error("bad input", 0) end)
          for w = 1, 2 do inner:spawn(worker, w) end
        end)
      s:spawn(quench.sleep, 100)
    end)
    log("scope ended: timeout? %s", tostring(not ok and quench.is_timeout(err)))
  end)
  log("done")
end)
