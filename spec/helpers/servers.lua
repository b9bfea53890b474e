-- Real servers for specs and examples (redis-server, memcached, a raw TCP
-- peer): started on a free loopback port, stopped by PID. A missing binary
-- is an error naming the Debian package, never a silent skip.
local quench = require "quench"

local M = {}

-- A free loopback port: bind port 0, read it, let it go.
-- Works inside a runtime or outside one.
function M.free_port()
  local function pick()
    local s = assert(quench.tcp.listen("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    return port
  end
  if pcall(quench.now) then return pick() end
  return quench.run(pick)
end

function M.have(binary)
  local p = io.popen("command -v " .. binary .. " 2>/dev/null")
  local out = p:read("a")
  p:close()
  return out ~= ""
end

-- Wait (up to 10 s) until something accepts on port.
local function wait_port(port, pid, name)
  local function try()
    for _ = 1, 200 do
      local c = quench.tcp.connect("127.0.0.1", port)
      if c then c:close(); return true end
      quench.sleep(0.05)
    end
    return false
  end
  local ok
  if pcall(quench.now) then ok = try() else ok = quench.run(try) end
  if not ok then
    os.execute("kill " .. pid .. " 2>/dev/null")
    error(name .. " did not start listening on 127.0.0.1:" .. port, 3)
  end
end

-- Start `cmd` (a shell word list) in the background; returns its PID.
local function spawn(cmd)
  -- without the sanitizer runtimes an ASan run preloads into lua5.4
  local p = assert(io.popen("exec env -u LD_PRELOAD " .. cmd .. " >/dev/null 2>&1 & echo $!"))
  local pid = tonumber(p:read("l"))
  p:close()
  return pid
end

local Server = {}
Server.__index = Server

function Server:stop()
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    -- reap it: wait until the PID is gone (at most ~5 s)
    for _ = 1, 100 do
      if not os.execute("kill -0 " .. self.pid .. " 2>/dev/null") then break end
      os.execute("sleep 0.05")
    end
    self.pid = nil
  end
end

function Server:kill()   -- SIGKILL: the server dies mid-way
  if self.pid then
    os.execute("kill -9 " .. self.pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not os.execute("kill -0 " .. self.pid .. " 2>/dev/null") then break end
      os.execute("sleep 0.05")
    end
    self.pid = nil
  end
end

Server.__close = Server.stop

local function start(binary, package_name, args_for_port, name, port)
  if not M.have(binary) then
    error(binary .. " not found: install Debian's " .. package_name
          .. " (scripts/deps.sh does)", 3)
  end
  port = port or M.free_port()
  local pid = spawn(binary .. " " .. args_for_port(port))
  assert(pid, "could not start " .. binary)
  wait_port(port, pid, name)
  return setmetatable({ pid = pid, port = port, host = "127.0.0.1", name = name }, Server)
end

-- Any command that listens on `port` once started (args: a shell string).
function M.start_command(binary, args, port)
  return start(binary, binary, function() return args end, binary, port)
end

function M.redis()
  return start("redis-server", "redis-server", function(port)
    return "--port " .. port .. " --bind 127.0.0.1 --save '' --appendonly no"
           .. " --daemonize no --protected-mode yes --loglevel warning"
  end, "redis-server")
end

function M.memcached()
  return start("memcached", "memcached", function(port)
    -- as root, memcached wants a user to run as: itself, then (-u root)
    local root = io.popen("id -u"):read("l") == "0"
    return "-l 127.0.0.1 -p " .. port .. " -U 0 -m 16" .. (root and " -u root" or "")
  end, "memcached")
end

return M
