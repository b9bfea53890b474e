-- Files (docs/io.md "Files"): quench.fs and the file object, on libuv's
-- thread pool. Real clock; every spec works in its own temporary directory.
local quench = require "quench"
local fs = quench.fs

local function T(fn)
  return quench.test(fn, { clock = "real" })
end

-- Remove a directory tree (awaiting).
local function rmtree(path)
  local st = fs.stat(path)
  if not st then return end
  if st.type == "directory" then
    for _, e in ipairs(assert(fs.readdir(path))) do rmtree(path .. "/" .. e.name) end
    assert(fs.rmdir(path))
  else
    assert(fs.unlink(path))
  end
end

-- A busted body running fn(dir) in a fresh temporary directory.
local function D(fn)
  return T(function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(fs.mkdir(dir, 448))                 -- 0700
    local ok, err = pcall(fn, dir)
    rmtree(dir)
    if not ok then error(err, 0) end
  end)
end

-- How many file descriptors this process has open (Linux), from a task or not.
local function fd_count()
  if quench.current() then return #assert(fs.readdir("/proc/self/fd")) end
  return quench.run(function() return #assert(fs.readdir("/proc/self/fd")) end)
end

describe("quench.fs", function()
  it("write_file and read_file round-trip bytes", D(function(dir)
    local data = {}
    for i = 0, 255 do data[#data + 1] = string.char(i) end
    local bytes = table.concat(data):rep(4096)        -- 1 MiB with every byte value
    assert.is_true(fs.write_file(dir .. "/a.bin", bytes))
    assert.are.equal(bytes, fs.read_file(dir .. "/a.bin"))
    assert.is_true(fs.write_file(dir .. "/a.bin", "short"))   -- truncates
    assert.are.equal("short", fs.read_file(dir .. "/a.bin"))
    assert.is_true(fs.write_file(dir .. "/empty", ""))
    assert.are.equal("", fs.read_file(dir .. "/empty"))
  end))

  it("open, write, read, close: a file object", D(function(dir)
    local path = dir .. "/f.txt"
    local f = assert(fs.open(path, "w"))
    assert.matches("^quench.file %(fd %d+%)$", tostring(f))
    assert.are.equal(f, f:write("hello world"))       -- the file, as Lua's file:write
    assert.are.equal(f, f:write(""))
    assert.is_true(f:close())
    assert.is_true(f:close())                          -- idempotent
    assert.are.equal("quench.file (closed)", tostring(f))
    assert.is_nil(f:fd())
    local r <close> = assert(fs.open(path))            -- "r" by default
    assert.are.equal("hello", r:read(5))
    assert.are.equal(" world", r:read(100))            -- fewer only at the end
    assert.is_nil(r:read(10))                          -- end of file
    assert.are.equal("", r:read(0))
    assert.are.equal("wor", r:read(3, 6))              -- at an offset
    assert.is_nil(r:read(3, 11))
  end))

  it("writes at an offset, appends, and honours exclusive creation", D(function(dir)
    local path = dir .. "/g"
    local f <close> = assert(fs.open(path, "w+"))
    f:write("0123456789")
    assert.are.equal(f, f:write("AB", 3))
    assert.are.equal("012AB56789", f:read(100, 0))
    assert.is_true(f:sync())
    local a <close> = assert(fs.open(path, "a"))
    a:write("++")
    assert.are.equal("012AB56789++", fs.read_file(path))
    assert.are.same({ nil, "EEXIST: file already exists", "EEXIST" }, { fs.open(path, "wx") })
    local _x <close> = assert(fs.open(dir .. "/new", "wx", 384))   -- 0600
    assert.are.equal(384, fs.stat(dir .. "/new").perm)
  end))

  it("returns I/O failures as nil, message, code", D(function(dir)
    assert.are.same({ nil, "ENOENT: no such file or directory", "ENOENT" },
      { fs.open(dir .. "/missing") })
    assert.are.same({ nil, "ENOENT: no such file or directory", "ENOENT" },
      { fs.stat(dir .. "/missing") })
    assert.are.same({ nil, "ENOENT: no such file or directory", "ENOENT" },
      { fs.read_file(dir .. "/missing") })
    assert.are.same({ nil, "EISDIR: illegal operation on a directory", "EISDIR" },
      { fs.read_file(dir) })
    assert.are.same({ nil, "EEXIST: file already exists", "EEXIST" }, { fs.mkdir(dir) })
    fs.write_file(dir .. "/file", "x")
    assert.are.same({ nil, "ENOTDIR: not a directory", "ENOTDIR" }, { fs.readdir(dir .. "/file") })
    assert.are.same({ nil, "ENOTEMPTY: directory not empty", "ENOTEMPTY" }, { fs.rmdir(dir) })
    assert.are.same({ nil, "ENOENT: no such file or directory", "ENOENT" },
      { fs.unlink(dir .. "/missing") })
    local ro <close> = assert(fs.open(dir .. "/file", "r"))
    local ok, msg, code = ro:write("nope")
    assert.are.same({ nil, "EBADF" }, { ok, code })
    assert.matches("^EBADF: ", msg)
  end))

  it("stat and f:stat report type, size, times and permissions", D(function(dir)
    local path = dir .. "/s"
    fs.write_file(path, "12345")
    local st = assert(fs.stat(path))
    assert.are.equal("file", st.type)
    assert.are.equal(5, st.size)
    assert.are.equal("integer", math.type(st.size))
    assert.is_true(math.abs(st.mtime - os.time()) < 60)
    for _, k in ipairs({ "mode", "perm", "dev", "ino", "nlink", "uid", "gid", "blksize", "blocks" }) do
      assert.are.equal("integer", math.type(st[k]), k)
    end
    assert.are.equal(1, st.nlink)
    local f <close> = assert(fs.open(path))
    local fst = assert(f:stat())
    assert.are.same({ st.ino, st.size, "file" }, { fst.ino, fst.size, fst.type })
    local d = assert(fs.stat(dir))
    assert.are.equal("directory", d.type)
    assert.are.equal(448, d.perm)
  end))

  it("readdir lists names and types, sorted, without . and ..", D(function(dir)
    assert.are.same({}, fs.readdir(dir))
    fs.write_file(dir .. "/b", "")
    fs.write_file(dir .. "/a", "")
    assert(fs.mkdir(dir .. "/sub"))
    assert.are.same({
      { name = "a", type = "file" }, { name = "b", type = "file" },
      { name = "sub", type = "directory" },
    }, fs.readdir(dir))
  end))

  it("rename, unlink, mkdir and rmdir", D(function(dir)
    fs.write_file(dir .. "/old", "content")
    assert.is_true(fs.rename(dir .. "/old", dir .. "/new"))
    assert.is_nil(fs.stat(dir .. "/old"))
    assert.are.equal("content", fs.read_file(dir .. "/new"))
    assert.is_true(fs.unlink(dir .. "/new"))
    assert.is_true(fs.mkdir(dir .. "/d", 493))       -- 0755
    assert.are.equal("directory", fs.stat(dir .. "/d").type)
    assert.is_true(fs.rmdir(dir .. "/d"))
    assert.are.same({}, fs.readdir(dir))
  end))

  it("the _op forms: awaited, selected, under a timeout", D(function(dir)
    local path = dir .. "/op"
    assert.is_true(fs.write_file_op(path, "abc"):await())
    local f <close> = assert(fs.open_op(path, "r+"):await())
    assert.are.equal("abc", f:read_op(10):await())
    assert.are.equal(f, f:write_op("XYZ", 0):await())
    assert.are.equal(3, f:stat_op():await().size)
    assert.are.equal(3, fs.stat_op(path):await().size)
    assert.are.equal("XYZ", fs.read_file_op(path):await())
    local i, data = quench.select(f:read_op(3, 0), quench.sleep_op(10))
    assert.are.same({ 1, "XYZ" }, { i, data })
    local ok, st = quench.timeout(10, fs.stat_op(path))
    assert.is_true(ok)
    assert.are.equal("file", st.type)
    assert.are.equal(1, #fs.readdir_op(dir):await())
    assert.is_true(fs.rename_op(path, path .. "2"):await())
    assert.is_true(fs.unlink_op(path .. "2"):await())
    assert.is_true(fs.mkdir_op(path):await())
    assert.is_true(fs.rmdir_op(path):await())
  end))

  it("misuse raises: a closed file, bad flags, no task", D(function(dir)
    local f = assert(fs.open(dir .. "/m", "w"))
    local op = f:read_op(1)
    f:close()
    assert.has_error(function() f:read(1) end, "quench.file:read: attempt to use a closed file")
    assert.has_error(function() f:write("x") end, "quench.file:write: attempt to use a closed file")
    assert.has_error(function() op:await() end, "quench.file:read: attempt to use a closed file")
    assert.has_error(function() fs.open(dir .. "/m", "q") end)
    assert.has_error(function() fs.open(dir .. "/m\0x") end)
    assert.has_error(function() fs.stat({}) end)
    do
      local g <close> = assert(fs.open(dir .. "/m"))
      assert.has_error(function() g:read(-1) end)
    end
  end))

  it("a file belongs to its quench.run: closed when it returns, then unusable", function()
    local path = os.tmpname()
    local before = fd_count()
    local f = quench.run(function()
      local file = assert(fs.open(path, "w"))
      assert.are.equal(before + 1, fd_count())
      return file
    end)
    assert.are.equal(before, fd_count())            -- closed by the runtime's end
    assert.are.equal("quench.file (closed)", tostring(f))
    assert.is_nil(f:fd())
    assert.is_true(f:close())                        -- close does nothing
    quench.run(function()
      assert.has_error(function() f:write("x") end, "quench.file:write: the file's runtime has "
        .. "ended (a file belongs to the quench.run that made it)")
    end)
    os.remove(path)
  end)

  it("waiting outside a task is a clear error", function()
    assert.has_error(function() fs.stat("/") end,
      "quench.fs.stat: not inside quench.run (waiting needs a running task)")
  end)

  it("a <close> file closes its fd at scope exit, also when its task is aborted", T(function()
    local before = fd_count()
    local h = quench.spawn(function()
      local f <close> = assert(fs.open("/dev/zero"))
      f:read(4)
      quench.sleep(10)
    end)
    quench.sleep(0.05)
    assert.are.equal(before + 1, fd_count())
    h:abort()
    assert.are.equal(before, fd_count())
  end))

  it("1,000 opens and reads dropped by timeouts leak nothing (fds: counted; memory: ASan)",
    function()
      local dir = os.tmpname()
      os.remove(dir)
      local before
      local outcomes = {}
      quench.run(function()
        assert(fs.mkdir(dir))
        local path = dir .. "/data"
        fs.write_file(path, string.rep("z", 65536))
        before = fd_count()
        local shared <close> = assert(fs.open(path))
        for i = 1, 1000 do
          local limit = (i % 5) / 4000          -- 0 .. 1 ms: dropped queued, running or done
          local ok, f = quench.timeout(limit, fs.open, path)
          if ok and f then
            local ok2 = quench.timeout(limit, f.read, f, 65536, i % 100)
            outcomes[ok2 and "read" or "read dropped"] = true
            f:close()                             -- a dropped read may still run: close waits
          else
            outcomes["open dropped"] = true
          end
          quench.timeout(limit, shared.read, shared, 4096, 0)
          if i % 3 == 0 then quench.timeout(limit, fs.read_file, path) end
        end
      end)
      -- run has returned: every dropped request has ended; every fd is closed
      assert.are.equal(before, fd_count())
      assert.is_true(outcomes["open dropped"])
      assert.is_true(outcomes["read"] or outcomes["read dropped"])
      quench.run(function() rmtree(dir) end)
    end)
end)
