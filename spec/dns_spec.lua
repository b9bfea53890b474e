-- Name resolution (docs/io.md "DNS"): quench.dns.getaddrinfo on libuv's
-- thread pool. Only "localhost" and literal addresses: no network needed.
local quench = require "quench"
local dns = quench.dns

local function T(fn)
  return quench.test(fn, { clock = "real" })
end

local function has(list, pred)
  for _, a in ipairs(list) do
    if pred(a) then return true end
  end
  return false
end

describe("quench.dns.getaddrinfo", function()
  it("resolves localhost to a loopback address", T(function()
    local list = assert(dns.getaddrinfo("localhost"))
    assert.is_true(#list >= 1)
    assert.is_true(has(list, function(a)
      return (a.family == "inet" and a.addr:match("^127%.")) or (a.family == "inet6" and a.addr == "::1")
    end))
    for _, a in ipairs(list) do
      assert.are.equal("stream", a.socktype)      -- the default: one entry per address
      assert.are.equal("tcp", a.protocol)
    end
  end))

  it("takes a literal address, a family and a port", T(function()
    assert.are.same({ { addr = "127.0.0.1", family = "inet", port = 8080, socktype = "stream",
      protocol = "tcp" } }, dns.getaddrinfo("127.0.0.1", { family = "inet", port = 8080 }))
    local list = assert(dns.getaddrinfo("127.0.0.1", { socktype = "dgram", numeric = true }))
    assert.are.same({ "127.0.0.1", "dgram", "udp", 0 },
      { list[1].addr, list[1].socktype, list[1].protocol, list[1].port })
    list = assert(dns.getaddrinfo("::1", { family = "inet6", port = "0" }))
    assert.are.same({ "::1", "inet6" }, { list[1].addr, list[1].family })
    list = assert(dns.getaddrinfo("127.0.0.1", { socktype = "any" }))
    assert.is_true(#list >= 2)                  -- stream, dgram (and raw)
  end))

  it("returns failures as nil, message, code", T(function()
    assert.are.same({ nil, "EAI_NONAME: unknown node or service", "EAI_NONAME" },
      { dns.getaddrinfo("localhost", { numeric = true }) })
    local ok, msg, code = dns.getaddrinfo("127.0.0.1", { family = "inet6", numeric = true })
    assert.is_nil(ok)
    assert.matches("^EAI_", code)
    assert.matches("^" .. code .. ": ", msg)
  end))

  it("getaddrinfo_op: awaited, selected, under a timeout", T(function()
    local op = dns.getaddrinfo_op("127.0.0.1", { family = "inet" })
    assert.matches("^quench.op %(getaddrinfo%)$", tostring(op))
    assert.are.equal("127.0.0.1", op:await()[1].addr)
    local i, list = quench.select(dns.getaddrinfo_op("localhost"), quench.sleep_op(10))
    assert.are.equal(1, i)
    assert.is_true(#list >= 1)
    local ok, l2 = quench.timeout(10, dns.getaddrinfo_op("127.0.0.1"))
    assert.is_true(ok)
    assert.are.equal("127.0.0.1", l2[1].addr)
  end))

  it("misuse raises", T(function()
    assert.has_error(function() dns.getaddrinfo() end)
    assert.has_error(function() dns.getaddrinfo("localhost", { family = "ipx" }) end)
    assert.has_error(function() dns.getaddrinfo("localhost", { socktype = "seq" }) end)
    assert.has_error(function() dns.getaddrinfo("localhost", { port = 70000 }) end)
    assert.has_error(function() dns.getaddrinfo("local\0host") end)
  end))

  it("waiting outside a task is a clear error", function()
    assert.has_error(function() dns.getaddrinfo("localhost") end,
      "quench.dns.getaddrinfo: not inside quench.run (waiting needs a running task)")
  end)

  it("lookups dropped by timeouts and aborts leak nothing (ASan)", T(function()
    local done, dropped = 0, 0
    for i = 1, 500 do
      local host = i % 2 == 0 and "localhost" or "127.0.0.1"
      if i % 10 == 0 then
        local h = quench.spawn(dns.getaddrinfo, host)
        quench.yield()
        h:abort()
        dropped = dropped + 1
      else
        local ok = quench.timeout((i % 3) / 4000, dns.getaddrinfo, host)
        if ok then done = done + 1 else dropped = dropped + 1 end
      end
    end
    assert.is_true(dropped > 0)
    assert.are.equal(500, done + dropped)
  end))
end)
