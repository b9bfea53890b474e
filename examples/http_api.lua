-- A JSON API on quench.http, with Debian's lua-cjson: a per-request
-- timeout (504 when the work takes too long), and a handler cancelled when
-- its client goes away. It runs a client against itself, then stops.
--
--   lua5.4 examples/http_api.lua
local quench = require "quench"
local cjson = require "cjson"

local items, next_id = {}, 1

local function reply(res, status, value)
  res:status(status)
  res:header("Content-Type", "application/json")
  res:finish(cjson.encode(value))
end

-- What each route does; the work of /report stands for a slow database.
local routes = {
  ["GET /items"] = function(_, res)
    local list = {}
    for id = 1, next_id - 1 do list[#list + 1] = items[id] end
    reply(res, 200, list)
  end,
  ["POST /items"] = function(req, res)
    local body, msg = req:body()
    if not body then return reply(res, 400, { error = msg }) end
    local ok, item = pcall(cjson.decode, body)
    if not ok or type(item) ~= "table" or type(item.name) ~= "string" then
      return reply(res, 400, { error = "expected {\"name\": string}" })
    end
    local new = { id = next_id, name = item.name }
    items[next_id], next_id = new, next_id + 1
    reply(res, 201, new)
  end,
  ["GET /report"] = function(req, res)
    local _log <close> = quench.guard(function() print("report handler: cleanup ran") end)
    local seconds = tonumber(req.args.seconds) or 0
    quench.sleep(seconds)                              -- the slow work
    reply(res, 200, { report = "ready", took = seconds })
  end,
}

local function handler(req, res)
  local route = routes[req.method .. " " .. req.path]
  if not route then return reply(res, 404, { error = "no such route" }) end
  -- every request gets at most 0.5 s; a timeout drops the route's work
  local ok, err = quench.timeout(0.5, route, req, res)
  if ok then return end
  if quench.is_timeout(err) and not res:started() then
    return reply(res, 504, { error = "the request took too long" })
  end
  error(err, 0)
end

-- A small client: one request on a connection of its own.
local function request(port, method, path, body)
  local c <close> = assert(quench.tcp.connect("127.0.0.1", port))
  c:write(method, " ", path, " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n",
          body and ("Content-Length: " .. #body .. "\r\n") or "", "\r\n", body or "")
  local response = c:read("a")
  return tonumber(response:match("^HTTP/1%.1 (%d+)")), response:match("\r\n\r\n(.*)$")
end

quench.run(function()
  local server = assert(quench.http.listen("127.0.0.1", 0))
  local _, port = server:getsockname()
  local serving = quench.spawn(server.serve, server, function(req, res)
    local _done <close> = quench.guard(function()
      if not res:started() then print(req.method .. " " .. req.path .. ": handler dropped") end
    end)
    local ok, err = pcall(handler, req, res)
    if not ok and quench.is_cancelled(err) then
      print(req.method .. " " .. req.path .. ": cancelled: " .. tostring(err.reason))
    end
    if not ok then error(err, 0) end
  end)

  print(request(port, "POST", "/items", '{"name":"apple"}'))
  print(request(port, "POST", "/items", '{"name":"pear"}'))
  print(request(port, "POST", "/items", "not json"))
  print(request(port, "GET", "/items"))
  print(request(port, "GET", "/nowhere"))
  print(request(port, "GET", "/report?seconds=0.1"))
  print(request(port, "GET", "/report?seconds=5"))     -- over the 0.5 s budget

  -- a client that gives up after 0.1 s: its handler is cancelled at once
  do
    local c <close> = assert(quench.tcp.connect("127.0.0.1", port))
    c:write("GET /report?seconds=0.4 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    quench.sleep(0.1)
  end
  quench.sleep(0.1)

  server:stop(1)                                       -- in-flight requests get 1 s
  serving:join()
  print("server stopped")
end)
