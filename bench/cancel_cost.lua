-- Per-call cost of quench's cancellation combinators over ops that are
-- already ready (issue: cancellation): nothing suspends, so this is pure
-- overhead. Compared with the same receive without a combinator.
--   LUA_CPATH='build/?.so;;' lua5.4 bench/cancel_cost.lua [N]
local quench = require "quench"
local N = tonumber(arg[1]) or 1000000
local clock = os.clock

local function measure(name, body)
  local ns = quench.run(function()
    local ch = quench.channel()
    local t0 = clock()
    body(ch, N)
    return (clock() - t0) / N * 1e9
  end)
  print(string.format("%-44s %8.0f ns/call", name, ns))
  return ns
end

local base = measure("send + recv (no combinator)", function(ch, n)
  for i = 1, n do ch:send(i); ch:recv() end
end)
local t = measure("send + timeout(1, ch:recv_op()) over ready op", function(ch, n)
  for i = 1, n do ch:send(i); quench.timeout(1, ch:recv_op()) end
end)
local s = measure("send + select(ch:recv_op(), sleep_op(1))", function(ch, n)
  local sleep_op = quench.sleep_op
  for i = 1, n do ch:send(i); quench.select(ch:recv_op(), sleep_op(1)) end
end)
local b = measure("send + select_biased(ch:recv_op(), ch2 op)", function(ch, n)
  local other = quench.channel()
  for i = 1, n do ch:send(i); quench.select_biased(ch:recv_op(), other:recv_op()) end
end)
print(string.format("timeout overhead %.0f ns, select overhead %.0f ns, biased select %.0f ns",
  t - base, s - base, b - base))
