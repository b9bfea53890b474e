-- A log collector on a Unix datagram socket (quench.unix.dgram), the shape
-- of syslog's /dev/log: clients send one line a datagram; a client with a
-- name gets an acknowledgement back, an unnamed one cannot be answered.
-- The collector waits for each datagram under a deadline, and a
-- datagram is never lost to a dropped receive.
--   lua5.4 examples/unix_datagrams.lua
local quench = require "quench"

local LOG = os.tmpname()   -- a fresh name; the sockets remove their files at close
os.remove(LOG)

quench.run(function()
  local collector <close> = assert(quench.unix.dgram(LOG))
  local server = quench.spawn(function()
    local n = 0
    while true do
      -- a quiet second ends the collector; a datagram that arrives as the
      -- deadline passes stays queued, it is not lost
      local ok, line, from = quench.timeout(1, collector.recv, collector)
      if not ok then break end
      n = n + 1
      print(("collector: %q from %s"):format(line, from == "" and "an unnamed socket" or from))
      if from ~= "" then collector:send("ok " .. n, from) end
    end
    return n
  end)

  local anon <close> = assert(quench.unix.dgram())            -- unnamed: fire and forget
  assert(anon:send("boot finished", LOG))

  local app <close> = assert(quench.unix.dgram(LOG .. ".app"))
  assert(app:connect(LOG))                                    -- send() with no name goes there
  assert(app:send("user 42 logged in"))
  print("app: " .. assert(app:recv()))

  print("collector saw", select(2, server:join()), "lines")
end)
