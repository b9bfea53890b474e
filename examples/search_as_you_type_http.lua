-- Search as you type, over real HTTP: every keystroke sends a search request
-- (quench.http.request) to a quench HTTP server started here; a newer
-- keystroke drops the request in flight. Dropping it stops its libcurl
-- transfer at once and closes its connection, so the server sees the client
-- go away and cancels that request's handler too: no stale result is shown,
-- and no server work goes on for a query nobody waits for any more.
-- Real clock (the HTTP client does real I/O); it ends by itself.
-- Run: lua5.4 examples/search_as_you_type_http.lua   (quench.so on LUA_CPATH)
local quench = require "quench"
local http = quench.http

local t0
local function say(fmt, ...)
  print(string.format("[%4.2f s] " .. fmt, quench.now() - t0, ...))
end

-- The server: a search takes 0.5 s; a cancelled one says so.
local cancelled = 0
local function search_handler(req, res)
  local q = req.args.q or ""
  local ok, err = pcall(quench.sleep, 0.5)          -- the "search"
  if not ok then
    cancelled = cancelled + 1
    say("server: search %q cancelled (%s)", q, quench.is_cancelled(err) and err.reason or err)
    error(err, 0)                                   -- let the cancellation finish the handler
  end
  res:header("Content-Type", "text/plain")
  res:finish(string.format("%d results for %q", #q * 7, q))
end

-- One request: the response's body, or an error.
local function fetch(base, query)
  say("request %q sent", query)
  local res = assert(http.request { url = base .. "/search?q=" .. query, timeout = 10 })
  return assert(res:body())
end

-- The user types "Rust", one letter every 0.15 s (faster than a search).
local function typist(keys)
  for i, text in ipairs({ "R", "Ru", "Rus", "Rust" }) do
    if i > 1 then quench.sleep(0.15) end
    say("user typed %q", text)
    keys:send(text)
  end
  quench.sleep(1)
  keys:close()                                      -- the user left the page
end

-- The search box: one request in flight; a newer keystroke drops it (the
-- task handle is a <close> variable: leaving the iteration aborts it).
local function search_box(base, keys)
  local shown = 0
  local query = keys:recv()
  while query do
    local request <close> = quench.spawn(fetch, base, query)
    local which, a, b = quench.select_biased(keys:recv_op(), request:join_op())
    if which == 1 then
      query = a                                     -- newer text, or nil: the page closed
    elseif a then
      say("UI shows: %s", b)
      shown = shown + 1
      query = keys:recv()
    else
      error(b, 0)
    end
  end
  return shown
end

quench.run(function()
  t0 = quench.now()
  local server = assert(http.listen("127.0.0.1", 0))
  local _, port = server:getsockname()
  local serving = quench.spawn(server.serve, server, search_handler)
  local base = "http://127.0.0.1:" .. port
  local keys = quench.channel()
  local typing = quench.spawn(typist, keys)
  local shown = search_box(base, keys)
  typing:join()
  -- the server notices each dropped client on its own schedule: wait for it
  quench.timeout(5, function()
    while cancelled < 3 do quench.sleep(0.01) end
  end)
  print(string.format("results shown: %d; server handlers cancelled: %d of 3 dropped requests",
                      shown, cancelled))
  server:stop(1)
  serving:join()
  print("server stopped")
end)
