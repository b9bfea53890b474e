-- An argument error must name the function. quench.process.spawn({"wc"})
-- said "bad argument #1 to '?'", and so did every function of quench's
-- tables (quench.tcp, quench.fs, ...) called where Lua sees no name for it
-- (through pcall, as a callback): Lua then looks the function up in
-- package.loaded, one level deep, and quench.tcp.connect was not there.
local quench = require "quench"

local function T(fn) return quench.test(fn, { clock = "real" }) end

describe("argument errors", function()
  it("name quench.process.spawn, however it is called", T(function()
    assert.are.same({ false, "quench.process.spawn: argument #1 (file) must be a string, got table" },
      { pcall(quench.process.spawn, { "wc" }) })
    assert.are.same({ false, "quench.process.spawn: argument #2 (opts) must be a table, got number" },
      { pcall(quench.process.spawn, "wc", 1) })
  end))

  it("name the functions of quench's tables called through pcall", T(function()
    assert.are.same({ false, "bad argument #2 to 'quench.tcp.connect' (number expected, got string)" },
      { pcall(quench.tcp.connect, "127.0.0.1", "x") })
    assert.are.same({ false, "bad argument #3 to 'quench.fs.open' (number expected, got table)" },
      { pcall(quench.fs.open, "/dev/null", "r", {}) })
    assert.are.same({ false, "bad argument #2 to 'quench.udp.bind' (number expected, got no value)" },
      { pcall(quench.udp.bind, "127.0.0.1") })
  end))

  it("come from quench's tables being in package.loaded (require \"quench.tcp\" works)", function()
    assert.are.equal(quench.tcp, package.loaded["quench.tcp"])
    assert.are.equal(quench.process, require "quench.process")
  end)
end)
