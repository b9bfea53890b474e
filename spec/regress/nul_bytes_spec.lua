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

  it("is refused in fs paths and flags", T(function()
    assert.has_error(function() fs.open("/dev/null", "r\0w") end,
      "quench.fs.open: argument #2 (flags)" .. CUT)
    assert.has_error(function() fs.open_op("/dev/null", "r\0w") end,
      "quench.fs.open_op: argument #2 (flags)" .. CUT)
    assert.has_error(function() fs.open("/dev/null\0/etc/passwd") end,
      "quench.fs.open: argument #1 (path)" .. CUT)
    assert.has_error(function() fs.rename("/tmp/a", "/tmp/b\0c") end,
      "quench.fs.rename: argument #2 (path)" .. CUT)
    assert.has_error(function() fs.stat_op("/tmp\0x") end,
      "quench.fs.stat_op: argument #1 (path)" .. CUT)
  end))

  it("is refused in DNS hosts, services and hints", T(function()
    local dns = quench.dns
    assert.has_error(function() dns.getaddrinfo("local\0host") end,
      "quench.dns.getaddrinfo: argument #1 (host)" .. CUT)
    assert.has_error(function() dns.getaddrinfo_op("local\0host") end,
      "quench.dns.getaddrinfo_op: argument #1 (host)" .. CUT)
    assert.has_error(function() dns.getaddrinfo("localhost", { port = "http\0x" }) end,
      "quench.dns.getaddrinfo: opts.port" .. CUT)
    assert.has_error(function() dns.getaddrinfo("localhost", { family = "inet\0x" }) end,
      "quench.dns.getaddrinfo: opts.family" .. CUT)
  end))

  it("makes no option key, read format or stdio kind of a cut string", T(function()
    assert.has_error(function() tcp.listen("127.0.0.1", 0, { ["nodelay\0x"] = true }) end,
      "quench.tcp.listen: unknown option 'nodelay' (with a zero byte after that)")
    assert.has_error(function() process.spawn("true", { ["env\0x"] = {} }) end,
      "quench.process.spawn: unknown option 'env' (with a zero byte after that)")
    assert.has_error(function() process.spawn("true", { stdout = "pipe\0x" }) end,
      "quench.process.spawn: opts.stdout must be \"pipe\", \"inherit\" or \"ignore\"")
    local server <close> = assert(tcp.listen("127.0.0.1", 0))
    local _, port = server:getsockname()
    local c <close> = assert(tcp.connect("127.0.0.1", port))
    assert.has_error(function() c:read("l\0x") end,
      "quench.tcp.stream:read: argument #1 (format)" .. CUT)
  end))
end)
