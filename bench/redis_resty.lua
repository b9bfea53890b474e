-- GET and SET round trips per second through the unmodified resty.redis
-- (Debian's lua-nginx-redis) on quench.ngx, one connection, one command at
-- a time: the same loop bench/redis.sh runs under nginx + ngx_lua.
--   lua5.4 bench/redis_resty.lua PORT [N [ONLY]]
-- ONLY (SET, GET or GET+pool) runs that loop alone, printing nothing: for
-- counting instructions with callgrind (bench/redis_ir.sh).
-- Prints "quench GET <rps> <cpu>", "quench SET ...", and the same with a
-- connect + set_keepalive around every command ("quench GET+pool ..."):
-- <cpu> is this process's CPU time (user + system) per command, in µs.
local quench = require "quench"
require("quench.ngx").install()
local redis = require "resty.redis"

local port = assert(tonumber(arg[1]), "usage: redis_resty.lua PORT [N]")
local n = tonumber(arg[2]) or 100000
local only = arg[3]

quench.run(function()
  local red = redis:new()
  red:set_timeout(5000)
  assert(red:connect("127.0.0.1", port))
  assert(red:set("bench:key", "xxx"))
  local function timed(name, fn)
    if only then
      if only == name then for _ = 1, n do fn() end end
      return
    end
    collectgarbage()
    local t0, c0 = quench.now(), os.clock()
    for _ = 1, n do fn() end
    local dt, cpu = quench.now() - t0, os.clock() - c0
    print(("quench %s %.0f %.2f"):format(name, n / dt, cpu / n * 1e6))   -- rate, CPU µs/command
  end
  timed("SET", function() assert(red:set("bench:key", "xxx")) end)
  timed("GET", function() assert(red:get("bench:key")) end)
  red:set_keepalive()
  timed("GET+pool", function()
    local r = redis:new()
    r:set_timeout(5000)
    assert(r:connect("127.0.0.1", port))
    assert(r:get("bench:key"))
    r:set_keepalive(60000, 10)
  end)
end)
