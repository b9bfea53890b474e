-- A Lua string may hold zero bytes; a C string ends at the first one. The
-- binding made C strings of them silently: process.spawn("/bin/true\0/bin/false")
-- ran /bin/true, an argument "safe\0; rm -rf /" reached the child as "safe",
-- and environment values, TCP and UDP hosts, signal names, p:kill names and
-- fs.open flags took the part before the zero byte. Each is refused now,
-- with an error naming the function and the argument.
local quench = require "quench"
local process, tcp, udp, fs = quench.process, quench.tcp, quench.udp, quench.fs

local function T(fn) return quench.test(fn, { clock = "real" }) end

local CUT = " contains a zero byte (a C string would end there)"

describe("a zero byte in a string made into a C string", function()
  it("is refused by process.spawn, in the file, args, env and cwd", T(function()
    assert.has_error(function() process.spawn("/bin/true\0/bin/false") end,
      "quench.process.spawn: argument #1 (file)" .. CUT)
    assert.has_error(function() process.spawn("echo", { args = { "ok", "safe\0; rm -rf /" } }) end,
      "quench.process.spawn: opts.args[2]" .. CUT)
    assert.has_error(function() process.spawn("sh", { env = { X = "a\0b" } }) end,
      "quench.process.spawn: opts.env.X" .. CUT)
    assert.has_error(function() process.spawn("sh", { env = { ["X\0Y"] = "1" } }) end,
      "quench.process.spawn: an opts.env name" .. CUT)
    assert.has_error(function() process.spawn("sh", { env = { "A=1", "B=2\0C=3" } }) end,
      "quench.process.spawn: opts.env[2]" .. CUT)
    assert.has_error(function() process.spawn("sh", { cwd = "/tmp\0/etc" }) end,
      "quench.process.spawn: opts.cwd" .. CUT)
  end))

  it("is refused as a signal name, by p:kill and quench.signal", T(function()
    local p <close> = assert(process.spawn("sleep", { args = { "5" } }))
    assert.has_error(function() p:kill("SIGKILL\0SIGTERM") end,
      "quench.process:kill: argument #1 (signal)" .. CUT)
    assert.has_error(function() quench.signal("SIGINT\0x") end,
      "quench.signal: argument #1 (signal)" .. CUT)
    assert.has_error(function() quench.signal_op("SIGINT\0x") end,
      "quench.signal_op: argument #1 (signal)" .. CUT)
    assert.is_true(p:kill("SIGKILL"))
  end))

  it("is refused as a TCP or UDP host", T(function()
    assert.has_error(function() tcp.connect("127.0.0.1\0evil", 1) end,
      "quench.tcp.connect: argument #1 (host)" .. CUT)
    assert.has_error(function() tcp.connect_op("127.0.0.1\0evil", 1) end,
      "quench.tcp.connect_op: argument #1 (host)" .. CUT)
    assert.has_error(function() tcp.listen("127.0.0.1\0evil", 0) end,
      "quench.tcp.listen: argument #1 (host)" .. CUT)
    assert.has_error(function() udp.bind("127.0.0.1\0evil", 0) end,
      "quench.udp.bind: argument #1 (host)" .. CUT)
    local u <close> = assert(udp.bind("127.0.0.1", 0))
    assert.has_error(function() u:send("x", "127.0.0.1\0evil", 9) end,
      "quench.udp:send: argument #2 (host)" .. CUT)
    assert.has_error(function() u:send_op("x", "127.0.0.1\0evil", 9) end,
      "quench.udp:send_op: argument #2 (host)" .. CUT)
  end))

  it("is refused in fs.open flags", T(function()
    assert.has_error(function() fs.open("/dev/null", "r\0w") end,
      "quench.fs.open: argument #2 (flags)" .. CUT)
  end))
end)
