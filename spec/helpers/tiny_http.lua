-- A tiny HTTP/1.1 server for the facade specs (socket.http, ssl.https):
-- one task per connection, the request line and headers read first, then
-- handler(path, stream) answers. listener: a quench.tcp or quench.tls
-- server. Returns its port and a function that stops it.
local quench = require "quench"

local M = {}

function M.serve(listener, handler)
  local _, port = listener:getsockname()
  local task = quench.spawn(function()
    quench.scope(function(sc)
      while true do
        local c = listener:accept()
        if not c then return end
        sc:spawn(function()
          local conn <close> = c
          local line = conn:read("l")
          if not line then return end
          repeat local h = conn:read("l") until h == nil or h == "\r" or h == ""
          handler(line:match("^%S+ (%S+)"), conn)
        end)
      end
    end)
  end)
  return port, function()
    listener:close()
    task:abort()
  end
end

-- A 200 answer with body, and the connection closed after it.
function M.reply(conn, body)
  conn:write("HTTP/1.1 200 OK\r\nContent-Length: ", #body, "\r\nConnection: close\r\n\r\n", body)
end

return M
