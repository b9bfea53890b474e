-- Shutdown by channel (article 003): a broadcast channel tells many workers
-- to stop, a oneshot tells one; each worker selects between its work and the
-- shutdown signal. Dropping (closing) the sender also stops the listener: a
-- oneshot whose sender goes out of scope unsent reads nil, "closed".
-- Virtual clock: runs instantly, prints the same lines every time.
-- Run: lua5.4 examples/shutdown_channels.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"

local function say(fmt, ...)
  print(string.format("[%4.2f s] " .. fmt, quench.now(), ...))
end

-- Work once a second until the shutdown receiver yields something.
local function worker(name, shutdown)
  say("[%s] ready to work", name)
  local jobs = 0
  while true do
    local which, signal, why = quench.select(quench.sleep_op(1), shutdown:recv_op())
    if which == 2 then
      say("[%s] shutdown (%s) after %d job(s)", name, tostring(signal or why), jobs)
      return jobs
    end
    jobs = jobs + 1
  end
end

quench.run({ clock = "virtual", seed = 1 }, function()
  -- broadcast: one send reaches every subscriber
  local tx = quench.broadcast(1)
  local w1 = quench.spawn(worker, "worker 1", tx:subscribe())
  local w2 = quench.spawn(worker, "worker 2", tx:subscribe())
  quench.sleep(3.5)
  say("[manager] sending shutdown to all workers")
  tx:send("shutdown")
  w1:join()
  w2:join()
  say("[manager] all workers have shut down")

  -- oneshot: one worker, one signal
  local stop_tx, stop_rx = quench.oneshot()
  local w3 = quench.spawn(worker, "worker 3", stop_rx)
  quench.sleep(2.5)
  stop_tx:send("stop")
  w3:join()

  -- oneshot whose sender is dropped unsent: the worker stops as well
  local w4
  do
    local _sender <close>, receiver = quench.oneshot()
    w4 = quench.spawn(worker, "worker 4", receiver)
    quench.sleep(1.5)
    say("[manager] leaving the scope without sending")
  end
  w4:join()
  say("[manager] done")
end)
