-- Search as you type (articles 000 and 001): every keystroke starts a search
-- request; a newer keystroke drops the request in flight, so a stale result
-- can never overwrite a fresh one, and the dropped request lets go of its
-- connection at once. The handle of the request in flight lives in a <close>
-- variable: leaving the loop iteration aborts it (quench's deterministic
-- "cancel by drop"; in tokio, dropping a JoinHandle would only detach).
-- Virtual clock: runs instantly, prints the same lines every time.
-- Run: lua5.4 examples/search_as_you_type.lua   (quench.so on LUA_CPATH, e.g. ./build/?.so)
local quench = require "quench"

local function say(fmt, ...)
  print(string.format("[%4.2f s] " .. fmt, quench.now(), ...))
end

-- A 'network request': holds a connection for 1 s, then returns results.
local function fetch(query)
  say("request %q sent", query)
  local _conn <close> = quench.guard(function() say("request %q: connection closed", query) end)
  quench.sleep(1)
  return string.format("%d results for %q", #query * 7, query)
end

-- The user: types "Rust" one letter every 0.3 s, then stops.
local function typist(keys)
  for i, text in ipairs({ "R", "Ru", "Rus", "Rust" }) do
    if i > 1 then quench.sleep(0.3) end
    say("user typed %q", text)
    keys:send(text)
  end
  quench.sleep(3)
  keys:close()                         -- the user left the page
end

-- The search box: one request in flight at a time.
local function search_box(keys)
  local query = keys:recv()
  while query do
    local request <close> = quench.spawn(fetch, query)
    local which, a, b = quench.select_biased(keys:recv_op(), request:join_op())
    if which == 1 then
      query = a                        -- newer text (or nil: closed); `request` is dropped at `end`
    elseif a then
      say("UI shows: %s", b)           -- the request finished
      query = keys:recv()
    else
      error(b, 0)                      -- the request failed: b is its error
    end
  end
end

quench.run({ clock = "virtual", seed = 1 }, function()
  local keys = quench.channel()
  local user = quench.spawn(typist, keys)
  search_box(keys)
  user:join()
  say("done: only the last query's results were shown")
end)
