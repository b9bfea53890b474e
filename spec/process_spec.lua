-- Processes, pipes and stdio (docs/io.md "Processes", "Pipes and stdio"):
-- real clock, every wait bounded by quench.timeout.
local quench = require "quench"

local function T(fn)
  return quench.test(fn, { clock = "real" })
end

local LIMIT = 10   -- seconds: no wait in these specs may take longer

-- fn(...) within LIMIT seconds: its results, or an error.
local function bounded(fn, ...)
  local r = table.pack(quench.timeout(LIMIT, fn, ...))
  assert(r[1], "timed out")
  return table.unpack(r, 2, r.n)
end

-- Whether a process with this pid exists, zombies included (reaped: gone).
local function exists(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if f then f:close() end
  return f ~= nil
end

-- sh -c script (start a long-running command with `exec`, so that killing
-- the shell kills the command and leaves no orphan behind).
local function sh(script, opts)
  opts = opts or {}
  opts.args = { "-c", script }
  return assert(quench.process.spawn("sh", opts))
end

-- A child lua5.4 running `code` with this quench on its path.
local function lua_child(code, opts)
  opts = opts or {}
  opts.args = { "-e", code }
  opts.env = { LUA_CPATH = package.cpath, LUA_PATH = package.path, LUA_CPATH_5_4 = false,
               LUA_PATH_5_4 = false }
  return assert(quench.process.spawn("lua5.4", opts))
end

describe("process", function()
  it("spawns, and wait returns the exit status and the signal", T(function()
    local p <close> = sh("exit 7")
    assert.is_true(p:pid() > 0)
    assert.are.same({ 7, 0 }, { bounded(p.wait, p) })
    assert.are.same({ 7, 0 }, { p:wait() })                -- kept: wait again
    assert.matches("exited with 7", tostring(p))
    local q <close> = sh("exec sleep 30")
    assert.is_true(q:kill("SIGTERM"))
    assert.are.same({ 0, 15 }, { bounded(q.wait, q) })
    assert.matches("killed by signal 15", tostring(q))
    assert.are.same({ nil, "ESRCH: no such process", "ESRCH" }, { q:kill() })
  end))

  it("reads and writes the child's pipes", T(function()
    local p <close> = sh("echo hello; echo oops >&2; read x; echo got $x; printf 'a\\nb'",
      { stdin = "pipe", stdout = "pipe", stderr = "pipe" })
    assert.are.equal("hello", bounded(p.stdout.read, p.stdout, "l"))
    assert.are.equal(p.stdin, p.stdin:write("abc", "\n"))
    assert.are.equal("got abc\n", bounded(p.stdout.read, p.stdout, "L"))
    assert.are.equal("a", bounded(p.stdout.read, p.stdout, 1))
    assert.are.equal("\nb", bounded(p.stdout.read_some, p.stdout))
    assert.is_nil(bounded(p.stdout.read, p.stdout, "l"))    -- EOF
    assert.are.equal("oops\n", bounded(p.stderr.read, p.stderr, "a"))
    assert.are.same({ 0, 0 }, { bounded(p.wait, p) })
    assert.matches("^quench.pipe %(stdout of process %d+, open%)$", tostring(p.stdout))
  end))

  it("peeks, waits for readiness and reads and writes without waiting on pipes", T(function()
    local p <close> = sh("read x; echo got $x", { stdin = "pipe", stdout = "pipe" })
    -- a pipe starts reading at its first read: try_read starts it too
    assert.are.same({ nil, "EAGAIN: resource temporarily unavailable", "EAGAIN" },
      { p.stdout:try_read() })
    assert.is_true(bounded(p.stdin.writable, p.stdin))
    assert.are.equal(p.stdin, p.stdin:try_write("abc\n"))
    assert.is_true(bounded(p.stdout.readable, p.stdout))
    assert.are.equal("got", bounded(p.stdout.peek, p.stdout, 3))
    assert.are.equal("got abc\n", bounded(p.stdout.read, p.stdout, "L"))   -- peek took nothing
    assert.is_true(bounded(p.stdout.readable, p.stdout))                  -- EOF is there
    assert.is_nil(p.stdout:try_read())
    assert.are.same({ 0, 0 }, { bounded(p.wait, p) })
  end))

  it("shutdown of stdin is the child's EOF", T(function()
    local p <close> = assert(quench.process.spawn("cat", { stdin = "pipe", stdout = "pipe" }))
    p.stdin:write("one\n", "two\n")
    assert.is_true(bounded(p.stdin.shutdown, p.stdin))
    assert.are.equal("one\ntwo\n", bounded(p.stdout.read, p.stdout, "a"))
    assert.are.same({ 0, 0 }, { bounded(p.wait, p) })
    assert.has_error(function() p.stdin:write("x") end,
      "quench.pipe:write: the stream's write side was shut down (no writes after shutdown)")
  end))

  it("moves a megabyte through a pipe both ways, in order", T(function()
    local p <close> = assert(quench.process.spawn("cat", { stdin = "pipe", stdout = "pipe" }))
    local chunk = string.rep("0123456789abcdef", 4096)             -- 64 KiB
    local writer = quench.spawn(function()
      for _ = 1, 16 do p.stdin:write(chunk) end
      p.stdin:shutdown()
    end)
    local got = bounded(p.stdout.read, p.stdout, "a")
    assert.are.equal(16 * #chunk, #got)
    assert.are.equal(string.rep(chunk, 16), got)
    bounded(writer.join, writer)
  end))

  it("pauses reading above the buffer limit, and loses nothing", T(function()
    local p <close> = sh("head -c 2000000 /dev/zero; echo; echo end", { stdout = "pipe" })
    assert.are.equal("\0\0\0", bounded(p.stdout.read, p.stdout, 3))
    quench.sleep(0.05)
    -- read_limit is 256 KiB; one read may fill what the buffer grew to past it
    assert.is_true(p.stdout:buffered() < 2 * 256 * 1024 + 16 * 1024, p.stdout:buffered())
    assert.is_false((quench.timeout(0.01, p.wait, p)))       -- the child is held back
    local rest = bounded(p.stdout.read, p.stdout, "l")
    assert.are.equal(2000000 - 3, #rest)
    assert.are.equal("end", bounded(p.stdout.read, p.stdout, "l"))
  end))

  it("a dropped read leaves the bytes buffered (cancel safety)", T(function()
    local p <close> = sh("printf abc; sleep 0.2; echo def", { stdout = "pipe" })
    assert.are.equal("ab", bounded(p.stdout.read, p.stdout, 2))
    assert.is_false((quench.timeout(0.01, p.stdout.read, p.stdout, "l")))   -- no newline yet
    local i = quench.select(p.stdout:read_op(10), quench.sleep_op(0.01))
    assert.are.equal(2, i)                                     -- the read lost the race
    assert.are.equal("cdef", bounded(p.stdout.read, p.stdout, "l"))
  end))

  it("one reader and one writer at a time; writing stdout is misuse", T(function()
    local p <close> = sh("exec sleep 5", { stdin = "pipe", stdout = "pipe" })
    local h = quench.spawn(function() return p.stdout:read("l") end)
    quench.yield()
    assert.has_error(function() p.stdout:read("l") end,
      "quench.pipe:read: another read is waiting on this stream (one reader at a time)")
    h:abort()
    local w = quench.spawn(function()                -- nobody reads: this write waits
      for _ = 1, 10 do p.stdin:write(string.rep("x", 65536)) end
    end)
    local deadline = quench.now() + LIMIT
    while p.stdin:queued() <= 256 * 1024 do          -- until it is over write_limit
      assert(quench.now() < deadline, "the writer never filled the queue")
      quench.sleep(0.001)
    end
    assert.has_error(function() p.stdin:write("y") end,
      "quench.pipe:write: another write is waiting on this stream (one writer at a time)")
    w:abort()
    assert.has_error(function() p.stdout:write("x") end,
      "quench.pipe:write: stdout of process " .. p:pid() .. " is not writable")
  end))

  it("wait is cancellable and dropping it does not kill the child", T(function()
    local p <close> = sh("exec sleep 30")
    assert.is_false((quench.timeout(0.02, p.wait, p)))
    local i = quench.select(p:wait_op(), quench.sleep_op(0.01))
    assert.are.equal(2, i)
    assert.is_true(exists(p:pid()))
    assert.is_true(p:kill(9))
    local r = { quench.select(p:wait_op(), quench.sleep_op(LIMIT)) }
    assert.are.same({ 1, 0, 9 }, r)
  end))

  it("kills and reaps a child when its <close> variable leaves scope", T(function()
    local pid
    do
      local p <close> = sh("exec sleep 30")
      pid = p:pid()
      assert.is_true(exists(pid))
    end
    assert.is_false(exists(pid))                               -- killed and reaped: no zombie
  end))

  it("kills and reaps the child of an aborted task", T(function()
    local started = quench.channel()
    local h = quench.spawn(function()
      local p <close> = sh("exec sleep 30")
      started:send(p:pid())
      p:wait()
    end)
    local pid = bounded(started.recv, started)
    assert.is_true(exists(pid))
    h:abort()
    assert.is_false(exists(pid))
    assert.is_falsy(os.execute("kill -0 " .. pid .. " 2>/dev/null"))
  end))

  it("kill_on_drop = false lets the child outlive its scope", T(function()
    local pid
    do
      local p <close> = sh("sleep 0.2", { kill_on_drop = false })
      pid = p:pid()
    end
    assert.is_true(exists(pid))
    local deadline = quench.now() + LIMIT
    while exists(pid) do                                       -- reaped when it exits
      assert(quench.now() < deadline, "child " .. pid .. " never reaped")
      quench.sleep(0.01)
    end
  end))

  it("kills what is still open when its runtime ends; collection alone does not", function()
    local pid_open, pid_collected
    quench.run(function()
      pid_open = sh("exec sleep 30"):pid()                          -- not in a <close> variable
      pid_collected = sh("exec sleep 30"):pid()
      collectgarbage()
      collectgarbage()
      assert.is_true(exists(pid_collected))                    -- garbage collection is no drop
    end)
    assert.is_false(exists(pid_open))
    assert.is_false(exists(pid_collected))
  end)

  it("close closes the pipes, and a closed process raises", T(function()
    local p = sh("exec sleep 30", { stdout = "pipe" })
    local out = p.stdout
    assert.is_true(p:close())
    assert.is_true(p:close())                                  -- idempotent
    assert.has_error(function() p:wait() end, "quench.process:wait: attempt to use a closed process")
    assert.has_error(function() p:kill() end, "quench.process:kill: attempt to use a closed process")
    assert.has_error(function() out:read("l") end, "quench.pipe:read: attempt to use a closed stream")
    assert.matches("closed", tostring(p))
  end))

  it("a process outliving its runtime raises from every method but close", function()
    local p
    quench.run(function()
      p = sh("exit 0", { stdout = "pipe" })
      bounded(p.wait, p)
    end)
    assert.has_error(function() p:pid() end, "quench.process:pid: the process's runtime has ended "
      .. "(a process belongs to the quench.run that made it)")
    assert.has_error(function() p.stdout:read("a") end, "quench.pipe:read: the stream's runtime "
      .. "has ended (a stream belongs to the quench.run that made it)")
    assert.is_true(p:close())
  end)

  it("reports a missing program as nil, message, code", T(function()
    assert.are.same({ nil, "ENOENT: no such file or directory", "ENOENT" },
      { quench.process.spawn("/no/such/program") })
    assert.are.same({ nil, "ENOENT: no such file or directory", "ENOENT" },
      { quench.process.spawn("sh", { cwd = "/no/such/dir" }) })
  end))

  it("passes args, env (names merged, or a whole list) and cwd", T(function()
    local p <close> = sh('printf "%s|%s|%s|%s" "$1" "$QUENCH_X" "$PWD" "${HOME:+home}"', {
      stdout = "pipe", cwd = "/tmp", env = { QUENCH_X = "x y" } })
    -- sh -c script: the next arg would be $0; none here, so $1 is empty
    assert.are.equal("|x y|/tmp|home", bounded(p.stdout.read, p.stdout, "a"))
    local q <close> = assert(quench.process.spawn("/bin/sh", {
      args = { "-c", 'printf "%s|%s|%s" "$0" "$1" "${HOME:-none}"', "zero", 1 },
      env = { "A=1" }, stdout = "pipe" }))
    assert.are.equal("zero|1|none", bounded(q.stdout.read, q.stdout, "a"))
    local r <close> = sh('printf "%s" "${HOME:-gone}"', { stdout = "pipe", env = { HOME = false } })
    assert.are.equal("gone", bounded(r.stdout.read, r.stdout, "a"))
  end))

  it("rejects bad options", T(function()
    assert.has_error(function() quench.process.spawn("sh", { stdout = "pipes" }) end,
      "quench.process.spawn: opts.stdout must be \"pipe\", \"inherit\" or \"ignore\"")
    assert.has_error(function() quench.process.spawn("sh", { argv = {} }) end,
      "quench.process.spawn: unknown option 'argv'")
    assert.has_error(function() quench.process.spawn("sh", { env = { "A=1", B = "2" } }) end,
      "quench.process.spawn: opts.env mixes a list and names")
    local p <close> = sh("exit 0", { stdin = "ignore", stdout = "ignore" })
    assert.is_nil(p.stdin)
    assert.has_error(function() p:kill("SIGNOPE") end,
      "bad argument #1 to 'kill' (unknown signal 'SIGNOPE')")
  end))

  it("names the function and the argument in every argument error", T(function()
    assert.has_error(function() quench.process.spawn({ "wc" }) end,
      "quench.process.spawn: argument #1 (file) must be a string, got table")
    assert.has_error(function() quench.process.spawn() end,
      "quench.process.spawn: argument #1 (file) must be a string, got no value")
    assert.has_error(function() quench.process.spawn("wc", "-l") end,
      "quench.process.spawn: argument #2 (opts) must be a table, got string")
    assert.has_error(function() quench.process.spawn("wc", { args = { {} } }) end,
      "quench.process.spawn: opts.args[1] must be a string, got table")
  end))

  it("refuses a zero byte in the program or an argument (no cut strings)", T(function()
    assert.has_error(function() quench.process.spawn("/bin/true\0/bin/false") end,
      "quench.process.spawn: argument #1 (file) contains a zero byte (a C string would end there)")
    assert.has_error(function()
      quench.process.spawn("sh", { args = { "-c", "exit 0", "safe\0; rm -rf /" } })
    end, "quench.process.spawn: opts.args[3] contains a zero byte (a C string would end there)")
  end))
end)

describe("stdio", function()
  local ECHO = [[
    local quench = require "quench"
    quench.run(function()
      local out = assert(quench.stdout())
      assert(quench.stdout() == out)
      for line in assert(quench.stdin()):lines() do out:write(line:upper(), "\n") end
      out:write("done\n")
    end)
    io.stdout:write("io still works\n")
  ]]

  it("reads quench.stdin() and writes quench.stdout() on pipes", T(function()
    local p <close> = lua_child(ECHO, { stdin = "pipe", stdout = "pipe", stderr = "pipe" })
    p.stdin:write("abc\n", "def\n")
    p.stdin:shutdown()
    assert.are.equal("ABC\nDEF\ndone\nio still works\n", bounded(p.stdout.read, p.stdout, "a"))
    assert.are.equal("", bounded(p.stderr.read, p.stderr, "a"))
    assert.are.same({ 0, 0 }, { bounded(p.wait, p) })
  end))

  it("writes out what stdout still has queued when the runtime ends", T(function()
    local p <close> = lua_child([[
      local quench = require "quench"
      quench.run(function()
        local out = assert(quench.stdout())
        -- 5 x 64 KiB: more than the socket takes, and no write waits (the queue
        -- is at most 256 KiB, write_limit, before the last one)
        for _ = 1, 5 do out:write(string.rep("x", 65536)) end
        io.stderr:write(out:queued(), "\n")           -- nobody reads yet: some is queued
      end)
      io.stdout:write("after\n")
    ]], { stdout = "pipe", stderr = "pipe" })
    assert.is_true(tonumber(bounded(p.stderr.read, p.stderr, "l")) > 0)
    local all = bounded(p.stdout.read, p.stdout, "a")
    assert.are.equal(5 * 65536 + #"after\n", #all)
    assert.are.equal("after\n", all:sub(-6))
    assert.are.same({ 0, 0 }, { bounded(p.wait, p) })
  end))

  it("works when stdin is a real pipe (a FIFO)", T(function()
    local cmd = "printf 'x\\ny\\n' | LUA_CPATH='" .. package.cpath .. "' lua5.4 -e '"
      .. ECHO:gsub("'", "") .. "'"
    local p <close> = sh(cmd, { stdout = "pipe" })
    assert.are.equal("X\nY\ndone\nio still works\n", bounded(p.stdout.read, p.stdout, "a"))
  end))

  -- script(1) (util-linux, in every Debian) runs the child on a new pty:
  -- stdin and stdout are then a terminal, the path that reopens the tty.
  local has_script = os.execute("command -v script >/dev/null 2>&1")
  local on_pty = has_script and it or pending
  on_pty("reads quench.stdin() and writes quench.stdout() on a terminal", T(function()
    local prog = os.tmpname()
    local f = assert(io.open(prog, "w"))
    f:write([[
      local quench = require "quench"
      quench.run(function()
        local out = assert(quench.stdout())
        out:write("a terminal: ", tostring(os.execute("test -t 0 && test -t 1")), "\n")
        out:write("got [", tostring(assert(quench.stdin()):read("l")), "]\n")
      end)
      io.stdout:write("io still works\n")
    ]])
    f:close()
    -- under the sanitizers, the preload is for lua5.4, not for script itself
    local preload = os.getenv("LD_PRELOAD")
    local cmd = (preload and ("env LD_PRELOAD='" .. preload .. "' ") or "") .. "lua5.4 " .. prog
    local p <close> = assert(quench.process.spawn("script",
      { args = { "-qec", cmd, "/dev/null" }, stdin = "pipe", stdout = "pipe",
        env = { LUA_CPATH = package.cpath, LUA_PATH = package.path, LD_PRELOAD = false } }))
    p.stdin:write("hello\n")
    local all = bounded(p.stdout.read, p.stdout, "a")
    os.remove(prog)
    -- the terminal echoes the input and ends lines with \r\n
    assert.are.equal("hello\r\na terminal: true\r\ngot [hello]\r\nio still works\r\n", all)
    assert.are.same({ 0, 0 }, { bounded(p.wait, p) })
  end))

  it("says clearly that a file cannot be a stream", T(function()
    local p <close> = sh("LUA_CPATH='" .. package.cpath .. "' lua5.4 -e '"
      .. [[local quench = require "quench"
           quench.run(function() print(quench.stdin()) end)]] .. "' < /etc/hostname",
      { stdout = "pipe" })
    assert.are.equal("nil\tENOTSUP: stdin is a file or a character device, which a stream "
      .. "cannot watch (streams take pipes, sockets and terminals; read a file with quench.fs "
      .. "or io)\tENOTSUP\n", bounded(p.stdout.read, p.stdout, "a"))
  end))
end)
