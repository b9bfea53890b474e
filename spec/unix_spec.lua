-- Unix domain sockets (issue 17, part 1): quench.unix.listen/connect,
-- stale socket files, peer credentials, the abstract namespace, and
-- adopting descriptors (quench.adopt, quench.tcp.adopt, quench.unix.adopt,
-- quench.listen_fds for systemd socket activation). Real clock: this is I/O;
-- tasks synchronize through the data, never through sleeps.
local quench = require "quench"
local unix = quench.unix

local function T(fn) return quench.test(fn, { clock = "real" }) end

-- Helper commands run without the sanitizer runtimes scripts/test.sh
-- preloads into lua5.4 (LeakSanitizer would judge python and sh too).
local SH = "env -u LD_PRELOAD "

local function tmp_path()
  local p = os.tmpname()
  os.remove(p)
  return p .. ".sock"
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  -- a socket file cannot be opened, but ls sees it
  return os.execute(SH .. "test -e " .. path) == true
end

local function sh(cmd)
  local p = assert(io.popen(SH .. cmd))
  local out = p:read("a")
  p:close()
  return (out:gsub("%s+$", ""))
end

local function my_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = tonumber(f:read("a"):match("^(%d+)"))
  f:close()
  return pid
end

-- A socket file nobody listens on: made by a process that exits without
-- removing it (as after a crash).
local function make_stale(path)
  assert(os.execute((SH .. "python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); "
    .. "s.bind(sys.argv[1]); s.listen(1)' %q"):format(path)))
  assert(os.execute(SH .. "test -S " .. path), "the stale socket file was not made")
end

local function pair(path, listen_opts)
  local server = assert(unix.listen(path, listen_opts))
  local client = assert(unix.connect(path))
  local accepted = assert(server:accept())
  return server, client, accepted
end

describe("quench.unix", function()
  local path
  before_each(function() path = tmp_path() end)
  after_each(function() os.remove(path) end)

  it("connects, and the streams carry bytes both ways with every read format", T(function()
    local server, client, accepted = pair(path)
    assert.equal("quench.unix.server (listening)", tostring(server))
    assert.equal("quench.unix.stream (open)", tostring(client))
    client:write("line one\r\n", "line two\n", "12345", "rest")
    assert.equal("line one\r", accepted:read("l"))
    assert.equal("line two\n", accepted:read("L"))
    assert.equal("123", accepted:read(3))
    assert.equal("45", accepted:read_some(2))
    client:close()
    assert.equal("rest", accepted:read("a"))
    assert.is_nil(accepted:read("l"))
    accepted:write("back\n")
    accepted:close()
    server:close()
  end))

  it("has the stream methods: lines, ops in a select, shutdown, buffered, queued", T(function()
    local server, client, accepted = pair(path)
    client:write("a\nb\nc\n")
    local got = {}
    local n = 0
    for line in accepted:lines() do
      got[#got + 1] = line
      n = n + 1
      if n == 3 then break end
    end
    assert.same({ "a", "b", "c" }, got)
    client:write("xx")
    local i, data = quench.select(accepted:read_op(2), quench.sleep_op(30))
    assert.equal(1, i)
    assert.equal("xx", data)
    client:write_op("xy"):await()
    assert.equal("xy", accepted:read(2))
    assert.equal(0, client:queued())
    client:write("zz")
    assert.is_true(client:shutdown())
    assert.equal("zz", accepted:read("a"))   -- the peer read EOF after the bytes
    assert.equal(0, accepted:buffered())
    accepted:close()
    client:close()
    server:close()
  end))

  it("loses no byte when a read is dropped by a timeout (cancel-safe)", T(function()
    local server, client, accepted = pair(path)
    local ok = quench.timeout(0.05, function() return accepted:read(4) end)
    assert.is_false(ok)
    client:write("ab")
    ok = quench.timeout(0.05, function() return accepted:read(4) end)
    assert.is_false(ok)
    client:write("cd")
    assert.equal("abcd", accepted:read(4))
    accepted:close(); client:close(); server:close()
  end))

  it("names both ends: the server's path, an unnamed client", T(function()
    local server, client, accepted = pair(path)
    assert.equal(path, server:getsockname())
    assert.equal(path, client:getpeername())
    assert.equal("", client:getsockname())
    assert.equal(path, accepted:getsockname())
    assert.equal("", accepted:getpeername())
    accepted:close(); client:close(); server:close()
  end))

  it("gives the peer's credentials (SO_PEERCRED: pid, uid, gid)", T(function()
    local server, client, accepted = pair(path)
    local cred = assert(accepted:getpeercred())
    assert.equal(my_pid(), cred.pid)
    assert.equal(tonumber(sh("id -u")), cred.uid)
    assert.equal(tonumber(sh("id -g")), cred.gid)
    assert.equal(my_pid(), assert(client:getpeercred()).pid)
    accepted:close(); client:close(); server:close()
  end))

  it("gives a child process's pid as the peer's", T(function()
    local server = assert(unix.listen(path))
    local p = assert(quench.process.spawn("python3", { args = { "-c",
      "import socket,sys,os; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
      .. "s.sendall(str(os.getpid()).encode()); s.close()", path }, env = { LD_PRELOAD = false } }))
    local c = assert(server:accept())
    local cred = assert(c:getpeercred())
    assert.equal(tostring(cred.pid), c:read("a"))
    assert.not_equal(my_pid(), cred.pid)
    p:wait()
    c:close(); server:close()
  end))

  it("removes its socket file when it closes, and at the runtime's end", function()
    T(function()
      local server = assert(unix.listen(path))
      assert.is_true(exists(path))
      server:close()
      assert.is_false(exists(path))
    end)()
    quench.run(function() assert(unix.listen(path)) end)
    assert.is_false(exists(path))
  end)

  it("leaves a file that replaced its own in place", T(function()
    local server = assert(unix.listen(path))
    assert(os.remove(path))
    local f = assert(io.open(path, "w"))
    f:write("someone else's")
    f:close()
    server:close()
    f = assert(io.open(path))
    assert.equal("someone else's", f:read("a"))
    f:close()
  end))

  it("replaces a stale socket file nobody listens on", T(function()
    make_stale(path)
    assert.same({ nil, "ECONNREFUSED: connection refused", "ECONNREFUSED" },
                { unix.connect(path) })
    local server, client, accepted = pair(path)
    client:write("hi")
    assert.equal("hi", accepted:read(2))
    accepted:close(); client:close(); server:close()
  end))

  it("refuses a path where a live server listens (EADDRINUSE), which keeps working", T(function()
    local first = assert(unix.listen(path))
    assert.same({ nil, "EADDRINUSE: address already in use", "EADDRINUSE" },
                { unix.listen(path) })
    -- the probe that found it alive was a connection, closed at once
    local probe = assert(first:accept())
    assert.equal("", probe:read("a"))
    probe:close()
    local client = assert(unix.connect(path))
    local accepted = assert(first:accept())
    client:write("ok")
    assert.equal("ok", accepted:read(2))
    accepted:close(); client:close(); first:close()
  end))

  it("never removes a file that is not a socket (EADDRINUSE)", T(function()
    local f = assert(io.open(path, "w"))
    f:write("data")
    f:close()
    local s, msg, code = unix.listen(path)
    assert.is_nil(s)
    assert.equal("EADDRINUSE", code, msg)
    f = assert(io.open(path))
    assert.equal("data", f:read("a"))
    f:close()
  end))

  it("sets the socket file's permissions (opts.mode)", T(function()
    local server = assert(unix.listen(path, { mode = tonumber("600", 8), backlog = 4 }))
    local st = assert(quench.fs.stat(path))
    assert.equal(tonumber("600", 8), st.perm)
    server:close()
  end))

  it("listens and connects in the abstract namespace (\"@name\"), with no file", T(function()
    local name = "@quench-spec-" .. my_pid()
    local server, client, accepted = pair(name)
    assert.equal(name, server:getsockname())
    assert.equal(name, client:getpeername())
    client:write("abs")
    assert.equal("abs", accepted:read(3))
    assert.same({ nil, "EADDRINUSE: address already in use", "EADDRINUSE" },
                { unix.listen(name) })
    assert.is_false(exists(name))
    accepted:close(); client:close(); server:close()
    -- closed: the name is free again
    local again = assert(unix.listen(name))
    again:close()
  end))

  it("reports I/O failures as nil, msg, code", T(function()
    assert.same({ nil, "ENOENT: no such file or directory", "ENOENT" }, { unix.connect(path) })
    local s, _, code = unix.listen("/nonexistent-dir-quench/x.sock")
    assert.is_nil(s)
    assert.equal("ENOENT", code)
    local server, client, accepted = pair(path)
    accepted:close()
    server:close()
    assert.is_nil(client:read("l"))            -- EOF
    client:close()
  end))

  it("raises on misuse, naming the function and the argument", T(function()
    assert.error_matches(function() unix.connect("a\0b") end,
                         "bad argument #1 to 'connect' %(a path without")
    assert.error_matches(function() unix.listen(("x"):rep(200)) end, "name too long")
    assert.error_matches(function() unix.listen("") end, "bad argument #1")
    assert.error_matches(function() unix.listen("@") end, "needs a name")
    assert.error_matches(function() unix.listen(path, { nodelay = true }) end,
                         "quench.unix.listen: unknown option 'nodelay'")
    assert.error_matches(function() unix.listen(path, { mode = "rw" }) end, "opts.mode")
    assert.error_matches(function() unix.connect(path, { backlog = 1 }) end,
                         "quench.unix.connect: unknown option 'backlog'")
    local server, client, accepted = pair(path)
    server:close()
    assert.error_matches(function() server:accept() end,
                         "quench.unix.server:accept: attempt to use a closed server")
    client:close()
    assert.error_matches(function() client:getpeercred() end,
                         "quench.unix.stream:getpeercred: attempt to use a closed stream")
    assert.error_matches(function() client:read() end, "quench.unix.stream:read")
    accepted:close()
  end))

  it("raises outside a runtime", function()
    assert.error_matches(function() unix.listen(path) end, "quench.unix.listen")
    assert.error_matches(function() unix.connect(path) end, "quench.unix.connect")
  end)

  it("serves many clients at once through accept_op", T(function()
    local server = assert(unix.listen(path))
    local clients = {}
    for k = 1, 20 do
      clients[k] = quench.spawn(function()
        local c = assert(unix.connect(path))
        c:write(("%d\n"):format(k))
        local r = c:read("l")
        c:close()
        return r
      end)
    end
    for _ = 1, 20 do
      local c = assert(server:accept_op():await())
      quench.spawn(function()
        local n = c:read("l")
        c:write(n * 2, "\n")
        c:close()
      end)
    end
    local sum = 0
    for _, r in ipairs(quench.join_all(table.unpack(clients))) do sum = sum + tonumber(r[2]) end
    assert.equal(2 * 210, sum)
    server:close()
  end))
end)

describe("quench.adopt", function()
  local socket = require "socket"   -- Debian's LuaSocket makes the descriptors

  -- A LuaSocket object's descriptor, taken from it (LuaSocket will not close it).
  local function take_fd(sock)
    local fd = math.tointeger(sock:getfd())
    sock:setfd(-1)
    return fd
  end

  it("adopts an inherited TCP listener as a server, and a connected socket as a stream",
     T(function()
    local ls = assert(socket.bind("127.0.0.1", 0))
    local _, port = ls:getsockname()
    local srv = assert(quench.adopt(take_fd(ls)))
    assert.equal("quench.tcp.server (listening)", tostring(srv))
    assert.equal(tonumber(port), select(2, srv:getsockname()))
    local c = assert(quench.tcp.connect("127.0.0.1", tonumber(port)))
    local a = assert(srv:accept())
    c:write("via adopt\n")
    assert.equal("via adopt", a:read("l"))
    -- a connected LuaSocket client as a quench stream
    local lc = assert(socket.connect("127.0.0.1", tonumber(port)))
    local s = assert(quench.tcp.adopt(take_fd(lc), { nodelay = true }))
    assert.equal("quench.tcp.stream (open)", tostring(s))
    local a2 = assert(srv:accept())
    s:write("stream\n")
    assert.equal("stream", a2:read("l"))
    a2:write("back\n")
    assert.equal("back", s:read("l"))
    for _, o in ipairs { c, a, a2, s, srv } do o:close() end
  end))

  it("adopts Unix sockets, and checks the family asked for", T(function()
    local path = tmp_path()
    local lu = assert(require("socket.unix")())
    assert(lu:bind(path))
    assert(lu:listen(4))
    local fd = take_fd(lu)
    assert.error_matches(function() quench.tcp.adopt(fd) end,
                         "quench.tcp.adopt: descriptor %d+ is not a TCP socket")
    local srv = assert(quench.unix.adopt(fd))
    assert.equal("quench.unix.server (listening)", tostring(srv))
    assert.equal(path, srv:getsockname())
    local c = assert(unix.connect(path))
    local a = assert(srv:accept())
    assert.equal("quench.unix.stream (open)", tostring(a))
    c:write("u")
    assert.equal("u", a:read(1))
    c:close(); a:close(); srv:close()
    os.remove(path)
  end))

  it("reports what cannot be adopted, and the descriptor stays the caller's", T(function()
    local u = assert(socket.udp())
    assert(u:setsockname("127.0.0.1", 0))
    local fd = math.tointeger(u:getfd())
    assert.same({ nil, "EPROTOTYPE: protocol wrong type for socket", "EPROTOTYPE" },
                { quench.adopt(fd) })
    assert(u:setpeername("127.0.0.1", 9))   -- still LuaSocket's, still usable
    u:close()
    local m = assert(socket.tcp())
    fd = math.tointeger(m:getfd())
    if fd and fd >= 0 then
      assert.same({ nil, "ENOTCONN: socket is not connected", "ENOTCONN" }, { quench.adopt(fd) })
    end
    m:close()
    assert.equal("EBADF", select(3, quench.adopt(1000)))
    assert.error_matches(function() quench.adopt(1) end, "bad argument #1 to 'adopt'")
    assert.error_matches(function() quench.adopt(-1) end, "bad argument #1")
    assert.error_matches(function() quench.adopt(5, { backlog = 3 }) end,
                         "quench.adopt: unknown option 'backlog'")
  end))

  it("takes systemd's descriptors (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES)", function()
    -- python plays systemd: a listening socket as fd 3, the variables set
    -- for the child's own pid, then exec of a quench program that adopts it
    local child = [[
      package.cpath = os.getenv("QCPATH")
      local quench = require "quench"
      quench.run(function()
        local fds, names = quench.listen_fds()
        io.write(#fds, " ", fds[1], " ", tostring(names[1]), " ",
                 tostring(os.getenv("LISTEN_FDS")), "\n")
        local srv = assert(quench.adopt(fds[1]))
        local host, port = srv:getsockname()
        local c = assert(quench.tcp.connect(host, port))
        local a = assert(srv:accept())
        c:write("activated\n")
        io.write(a:read("l"), "\n")
        a:close(); c:close(); srv:close()
      end)
    ]]
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(child)
    f:close()
    local py = [==[
import os, socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
pid = os.fork()
if pid == 0:
    if s.fileno() != 3: os.dup2(s.fileno(), 3)
    os.set_inheritable(3, True)
    env = dict(os.environ, LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES="web")
    if os.environ.get("QPRELOAD"): env["LD_PRELOAD"] = os.environ["QPRELOAD"]
    os.execvpe("lua5.4", ["lua5.4", sys.argv[1]], env)
_, st = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(st))
]==]
    local pyfile = os.tmpname()
    f = assert(io.open(pyfile, "w"))
    f:write(py)
    f:close()
    local out = sh(("QCPATH='%s' QPRELOAD='%s' python3 %s %s 2>&1")
      :format(package.cpath, os.getenv("LD_PRELOAD") or "", pyfile, script))
    os.remove(script)
    os.remove(pyfile)
    assert.equal("1 3 web nil\nactivated", out)
  end)

  it("returns no descriptors meant for another process, and none without the variables",
     T(function()
    local fds = quench.listen_fds()
    assert.same({}, fds)
  end))
end)
