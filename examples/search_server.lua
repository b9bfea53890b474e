-- Search as you type over TCP (article 000, "The search bar problem"): the
-- same search box as search_as_you_type.lua, but every request is a real
-- connection to a local search server (quench.tcp, on 127.0.0.1). A newer
-- keystroke drops the request in flight: its task is aborted, the <close>
-- on its stream closes the connection, and the server, which watches its
-- client while it searches, sees EOF and drops its own work. Only the
-- last query is answered; no stale answer can reach the screen.
-- Real clock (real sockets); the output is the same every run.
-- Run: lua5.4 examples/search_server.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"

if not quench.tcp then
  io.stderr:write("this quench has no quench.tcp\n")
  os.exit(1)
end

local SEARCH_TIME = 0.3                -- the server's "database" time per query
local TYPING = 0.1                     -- the user's time between keystrokes

local function say(fmt, ...)
  io.stdout:write(string.format(fmt, ...), "\n")
  io.stdout:flush()
end

---------------------------------------------------------------- the server

-- One connection: a query line in, a result line out. While it searches,
-- it also reads from the client: EOF there means the client went away.
local function serve(stream)
  local _conn <close> = stream
  local query = stream:read("l")
  if not query then return end
  local which = quench.select(
    function() quench.sleep(SEARCH_TIME); return "found" end,
    function() return stream:read_some() end)          -- nil at EOF
  if which == 2 then
    say("server: client of %q went away: search dropped", query)
    return
  end
  stream:write(string.format("%d results for %q\n", #query * 7, query))
  say("server: answered %q", query)
end

local function server_loop(server)
  -- aborted with the server; detach: a handler that ended leaves the set at
  -- once (nobody joins them), so the server does not grow per connection
  local handlers <close> = quench.task_set({ detach = true })
  while true do
    local stream = assert(server:accept())
    handlers:spawn(serve, stream)
  end
end

---------------------------------------------------------------- the client

local function fetch(port, query)
  local conn <close> = assert(quench.tcp.connect("127.0.0.1", port))
  say("client: request %q sent", query)
  conn:write(query, "\n")
  return conn:read("l")
end

local function typist(keys)
  for i, text in ipairs({ "R", "Ru", "Rus", "Rust" }) do
    if i > 1 then quench.sleep(TYPING) end
    say("user typed %q", text)
    keys:send(text)
  end
  quench.sleep(SEARCH_TIME * 3)
  keys:close()                                         -- the user left the page
end

local function search_box(port, keys)
  local query = keys:recv()
  while query do
    local request <close> = quench.spawn(fetch, port, query)
    local which, a, b = quench.select_biased(keys:recv_op(), request:join_op())
    if which == 1 then
      query = a                        -- newer text (or nil: closed): `request` is aborted at `end`
    elseif a then
      say("UI shows: %s", b)
      query = keys:recv()
    else
      error(b, 0)
    end
  end
end

quench.run(function()
  local server = assert(quench.tcp.listen("127.0.0.1", 0))
  local _, port = server:getsockname()
  local srv = quench.spawn(server_loop, server)
  local keys = quench.channel()
  local user = quench.spawn(typist, keys)
  search_box(port, keys)
  user:join()
  srv:abort()                          -- its handlers go with it (the task set's <close>)
  server:close()
  say("done: only the last query was answered")
end)
