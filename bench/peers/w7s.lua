-- W7s (bytes per idle task blocked in a 3600 s sleep) for the Lua peers of
-- ../shared/bench-peers, which define W1..W7 but not W7s.
--
--   lua5.4 bench/peers/w7s.lua luv|cqueues W7s [W7S_N=100000] [W7S_SLEEP_S=3600]
--
-- Each peer sleeps the way its W3 does in bench-peers:
--   luv      the luvit-style glue of bench-peers/lua/luv_coro.lua: spawn creates
--            and resumes the coroutine at once (via a trampoline and a task
--            record), sleep makes a uv timer whose callback closes it and resumes
--   cqueues  cq:wrap(fn), and cqueues.sleep(s) in the thread
-- Task handles are not retained. Value = (RSS once all N sleep - RSS before
-- the first spawn) / N after a full GC; lua_heap_bytes_per_task is the same
-- delta of collectgarbage("count"). The program exits without waking anyone.

local peer = arg[1]
local cfg = { W7S_N = 100000, W7S_SLEEP_S = 3600 }
for k, v in pairs(cfg) do cfg[k] = math.tointeger(tonumber(os.getenv(k))) or v end
local workload
for i = 2, #arg do
  local k, v = arg[i]:match("^([%w_]+)=(.*)$")
  if k then
    cfg[k:upper()] = math.tointeger(tonumber(v)) or cfg[k:upper()]
  elseif not workload then
    workload = arg[i]
  end
end

local function out(line, code)
  io.write(line, "\n")
  io.flush()
  os.exit(code)
end

if peer ~= "luv" and peer ~= "cqueues" then
  io.stderr:write("usage: lua5.4 bench/peers/w7s.lua luv|cqueues W7s [KEY=VALUE ...]\n")
  os.exit(2)
end
if (workload or ""):upper() ~= "W7S" then
  out(string.format("peer=%s workload=%s value=NA unit=- check=unsupported reason=only_W7s_here",
    peer, workload or "?"), 3)
end

local function rss()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")) * 1024
end

local function heap()
  collectgarbage("collect")
  collectgarbage("collect")
  return collectgarbage("count") * 1024
end

local N, S = cfg.W7S_N, cfg.W7S_SLEEP_S

local function report(rss0, rss1, heap0, heap1, started)
  local ok = started == N
  out(string.format("peer=%s workload=W7s value=%d unit=bytes/task check=%s "
    .. "blocked=%d lua_heap_bytes_per_task=%.0f", peer, math.floor((rss1 - rss0) / N + 0.5),
    ok and "ok" or "FAIL", started, (heap1 - heap0) / N), ok and 0 or 1)
end

if peer == "luv" then
  local uv = require("luv")
  local create, resume, yield, running = coroutine.create, coroutine.resume, coroutine.yield,
    coroutine.running
  -- the glue of luv_coro.lua, unchanged
  local pending = {}   -- luacheck: ignore 241 (kept: the luv peer pays for it per task)
  local function assert_resume(co, ...)
    local ok, err = resume(co, ...)
    if not ok then error(debug.traceback(co, err), 0) end
  end
  local function trampoline(t, fn, a)
    local r = fn(a)
    t.done, t.result, t.co = true, r, nil
    local w = t.waiter
    if w then t.waiter = nil; assert_resume(w, r) end
  end
  local function spawn(fn, a)
    local co = create(trampoline)
    local t = { co = co }
    assert_resume(co, t, fn, a)
    return t
  end
  local function sleep(ms)
    local co = running()
    local timer = uv.new_timer()
    pending[co] = timer
    timer:start(ms, 0, function()
      pending[co] = nil
      timer:close()
      assert_resume(co)
    end)
    return yield()
  end

  local started = 0
  local function body()
    started = started + 1
    sleep(S * 1000)
  end
  local heap0, rss0 = heap(), rss()
  for _ = 1, N do spawn(body) end   -- each runs until its sleep
  local heap1, rss1 = heap(), rss()
  report(rss0, rss1, heap0, heap1, started)
else
  local cqueues = require("cqueues")
  local cq = cqueues.new()
  local started = 0
  local function body()
    started = started + 1
    cqueues.sleep(S)
  end
  cq:wrap(function()
    local heap0, rss0 = heap(), rss()
    for _ = 1, N do cq:wrap(body) end
    while started < N do cqueues.sleep(0.001) end
    local heap1, rss1 = heap(), rss()
    report(rss0, rss1, heap0, heap1, started)
  end)
  while true do
    local ok, err = cq:step()
    if not ok then error(err) end
  end
end
