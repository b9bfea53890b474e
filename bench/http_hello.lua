-- W8's quench server: HTTP/1.1 hello world on 127.0.0.1:PORT (arg 1),
-- stopped by SIGTERM (bench/http.sh sends it); prints the requests served.
--   lua5.4 bench/http_hello.lua 8080
local quench = require "quench"

local port = assert(tonumber(arg[1]), "usage: lua5.4 bench/http_hello.lua PORT")
local served = 0
quench.run(function()
  local server = assert(quench.http.listen("127.0.0.1", port,
    { sigterm = true, grace = 1, keepalive_timeout = 60, backlog = 4096, max_connections = 0 }))
  print("ready")
  io.stdout:flush()
  server:serve(function(_, res)
    served = served + 1
    res:finish("hello\n")
  end)
end)
print("workload=W8 served=" .. served)
