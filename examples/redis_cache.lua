-- A cache in front of a slow computation, with OpenResty's resty.redis
-- (Debian's lua-nginx-redis, unmodified) running on quench through
-- quench.ngx: concurrent requests share pooled connections, a lookup is
-- bounded by a timeout, a request aborted mid-command leaves nothing
-- behind for the next user, and a capped pool queues its connects. It
-- starts its own redis-server on a free loopback port and stops it at the
-- end (docs/openresty.md).
local quench = require "quench"
local ngxq = require "quench.ngx"
local ngx = ngxq.install()   -- also the global `ngx` the driver reads

local function have(binary)
  local p = io.popen("command -v " .. binary .. " 2>/dev/null")
  local found = p:read("a") ~= ""
  p:close()
  return found
end

if not have("redis-server") then
  print("redis_cache: SKIPPED: redis-server is not installed (Debian: redis-server)")
  return
end
local ok_redis, redis = pcall(require, "resty.redis")
if not ok_redis then
  print("redis_cache: SKIPPED: resty.redis is not installed (Debian: lua-nginx-redis)")
  return
end

-- Start redis-server on a free port; returns the port and its PID.
local function start_redis()
  local port = quench.run(function()
    local s = assert(quench.tcp.listen("127.0.0.1", 0))
    local _, p = s:getsockname()
    s:close()
    return p
  end)
  local cmd = ("exec redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no"
               .. " >/dev/null 2>&1 & echo $!"):format(port)
  local p = io.popen(cmd)
  local pid = tonumber(p:read("l"))
  p:close()
  return port, pid
end

local port, pid = start_redis()

local function main()
  -- wait for the server to listen
  for _ = 1, 200 do
    local c = quench.tcp.connect("127.0.0.1", port)
    if c then c:close(); break end
    quench.sleep(0.05)
  end

  local function connect(timeout_ms)
    local red = redis:new()
    red:set_timeout(timeout_ms or 1000)
    assert(red:connect("127.0.0.1", port))
    return red
  end

  -- Cache-aside: the value from redis, or compute it and store it.
  local computed = 0
  local function cached(key, compute)
    local red = connect()
    local v = red:get(key)
    if v == ngx.null then
      computed = computed + 1
      v = compute(key)
      red:set(key, v, "EX", 60)
    end
    red:set_keepalive(10000, 8)     -- the connection goes back to the pool
    return v
  end
  local function slow_square(key)
    quench.sleep(0.01)              -- the expensive part
    local n = tonumber(key:match("%d+"))
    return tostring(n * n)
  end

  connect():flushdb()
  print("first:  " .. cached("sq:12", slow_square) .. " (computed " .. computed .. ")")
  print("second: " .. cached("sq:12", slow_square) .. " (computed " .. computed .. ")")

  -- 5 waves of 10 concurrent requests for 10 keys, over at most 8 pooled
  -- connections: later waves reuse the connections of earlier ones.
  local right, reused = 0, 0
  for _ = 1, 5 do
    local fns = {}
    for i = 1, 10 do
      fns[i] = function()
        local v = cached("sq:" .. i, slow_square)
        local probe = connect()
        reused = math.max(reused, probe:get_reused_times())
        probe:set_keepalive(10000, 8)
        return v == tostring(i * i)
      end
    end
    for _, r in ipairs(quench.join_all(table.unpack(fns))) do
      if r[1] and r[2] then right = right + 1 end
    end
  end
  print(("concurrent: %d of 50 answers right; a pooled connection was reused %s")
        :format(right, reused >= 2 and "again and again" or reused .. " times"))

  -- A lookup bounded by a timeout: BLPOP on an empty list waits forever;
  -- quench.timeout drops it after 0.2 s.
  local ok, err = quench.timeout(0.2, function()
    return connect():blpop("jobs", 0)
  end)
  print("bounded lookup: " .. tostring(ok) .. " (" .. tostring(err) .. ")")

  -- A request aborted mid-command: its connection is never pooled.
  local red = connect()
  local h = quench.spawn(function() return red:blpop("jobs", 0) end)
  quench.sleep(0.05)
  h:abort("client went away")
  -- the drop closed its connection at once: redis forgot the BLPOP
  print("aborted request: its connection is " .. select(2, red:set_keepalive()))
  local nxt = connect()
  nxt:rpush("jobs", "job-1")
  print(("next user: %s on a connection reused %d times; jobs still queued: %d")
        :format(nxt:get("sq:12"), nxt:get_reused_times(), nxt:llen("jobs")))
  nxt:set_keepalive()

  -- Connect queueing (OpenResty's pool_size and backlog): 10 concurrent
  -- requests share at most 2 connections of the pool "capped"; the others
  -- wait their turn (a connect past the backlog would fail at once).
  local made, capped = 0, {}
  for i = 1, 10 do
    capped[i] = function()
      local r = redis:new()
      r:set_timeout(1000)
      assert(r:connect("127.0.0.1", port, { pool = "capped", pool_size = 2, backlog = 10 }))
      if r:get_reused_times() == 0 then made = made + 1 end
      local v = r:get("sq:12")
      quench.sleep(0.01)
      r:set_keepalive(10000, 2)
      return v
    end
  end
  local answers = 0
  for _, r in ipairs(quench.join_all(table.unpack(capped))) do
    if r[1] and r[2] == "144" then answers = answers + 1 end
  end
  print(("capped pool: %d answers over %d connections"):format(answers, made))
end

local ok, err = pcall(quench.run, main)
os.execute("kill " .. pid)                     -- stopped whatever happened
if not ok then error(err, 0) end
print("redis stopped; done")
