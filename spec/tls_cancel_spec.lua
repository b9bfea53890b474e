-- Random cancellation programs over TLS streams (issue 16): for each seed, a
-- quench TLS client and server run random sequences of handshakes, writes
-- and reads of random sizes, each under a random timeout, while a third
-- task aborts one side at a random moment (mid-handshake, mid-read or
-- mid-write, as it falls). Real clock, loopback. Checked, for every seed:
--   * what each side received is a prefix of the concatenation of the
--     writes the other side saw return (a dropped write wrote nothing, a
--     returned write is queued whole, a dropped read lost nothing: the
--     byte stream is never corrupted, reordered or holed);
--   * a dropped handshake leaves the stream closed (its methods raise
--     "attempt to use a closed stream"), never half open;
--   * every other failure is a value (nil, msg, code), never a raise, a
--     crash or a hang; quench.run returns with nothing left open (the
--     sanitizers and valgrind check the memory: scripts/test.sh).
local quench = require "quench"
local tls_pki = require "helpers.tls_pki"

local SEEDS = os.getenv("QUENCH_UNDER_VALGRIND") == "1" and 8 or 60

local pki
-- The time scale of the programs' timeouts: one handshake and round trip,
-- measured here (ASan and valgrind make it ten times longer or more).
local unit

setup(function()
  pki = tls_pki.make()
  unit = quench.run({ clock = "real" }, function()
    local srv <close> = assert(quench.tls.listen("127.0.0.1", 0, {
      certificate = pki.server.cert, key = pki.server.key }))
    local _, port = srv:getsockname()
    local t = quench.spawn(function()
      local s <close> = assert(srv:accept())
      s:write(s:read(1))
    end)
    local t0 = quench.now()
    local c <close> = assert(quench.tls.connect("localhost", port, { cafile = pki.ca.cert }))
    c:write("x")
    c:read(1)
    local elapsed = quench.now() - t0
    t:join()
    return math.max(elapsed, 0.002)
  end)
end)
teardown(function() tls_pki.remove(pki) end)

local function rng_for(seed)
  local x = seed * 7919 + 1
  return function(a, b)
    x = (x * 1103515245 + 12345) % 2147483648
    return a + x % (b - a + 1)
  end
end

-- n bytes numbering the stream's position, so that a hole or a swap shows.
local function bytes_at(pos, n)
  local t = {}
  for i = 0, n - 1, 4 do t[#t + 1] = string.pack("<I4", (pos + i) // 4 % 0xFFFFFFFF) end
  return table.concat(t):sub(1, n)
end

local CLOSED = "attempt to use a closed stream"

-- One side's random program on stream s. Returns what it received; fills
-- `sent` with the data of the writes that returned true.
-- mode "drop": the first op is a handshake under a zero timeout (it must
-- wait, so it is dropped: the stream closes); "calm": long timeouts.
local function program(s, rng, sent, received, out, mode)
  local pos = 0
  for step = 1, rng(3, 25) do
    local op, wait = rng(1, 5), unit * rng(0, 100) / 100
    if mode == "calm" then wait = unit * 20 end
    if mode == "drop" and step == 1 then op, wait = 1, 0 end
    local ok, r, msg
    if op == 1 then
      ok, r, msg = quench.timeout(wait, s.handshake, s)
    elseif op <= 3 then
      local n = rng(1, 40000)
      local data = bytes_at(pos, n)
      ok, r, msg = quench.timeout(wait, s.write, s, data)
      if ok and r then
        sent[#sent + 1] = data
        pos = pos + n
      end
    elseif op == 4 then
      ok, r, msg = quench.timeout(wait, s.read_some, s, rng(1, 30000))
      if ok and r then received[#received + 1] = r end
    else
      ok, r, msg = quench.timeout(wait, s.read, s, rng(1, 5000))
      if ok and r then received[#received + 1] = r end
    end
    if ok and r == nil then               -- an I/O failure or EOF: a value, then stop
      out.failure = msg or "eof"
      return
    end
  end
  out.done = true
end

-- Run fn(s); a raise must be the closed-stream one (after a dropped
-- handshake, or the other task's abort having closed it).
local function guarded(s, fn, out)
  local ok, err = pcall(fn)
  if not ok then
    out.raised = tostring(err)
    assert(tostring(err):find(CLOSED, 1, true), "unexpected error: " .. tostring(err))
    assert(s == nil or (pcall(s.read_some, s)) == false)   -- closed for good
  end
end

local function run_seed(seed)
  local rng = rng_for(seed)
  local mode = ({ [0] = "drop", [1] = "calm" })[seed % 4]
  local c_sent, c_recv, s_sent, s_recv = {}, {}, {}, {}
  local c_out, s_out = {}, {}
  quench.run({ clock = "real" }, function()
    local srv <close> = assert(quench.tls.listen("127.0.0.1", 0, {
      certificate = pki.server.cert, key = pki.server.key }))
    local _, port = srv:getsockname()
    local server = quench.spawn(function()
      local s <close> = srv:accept()
      if not s then return end
      guarded(s, function() program(s, rng, s_sent, s_recv, s_out, mode) end, s_out)
    end)
    local client = quench.spawn(function()
      local limit = mode and 1 + unit * 20 or unit * rng(0, 300) / 100
      local ok, c = quench.timeout(limit, quench.tls.connect, "localhost", port,
                                   { cafile = pki.ca.cert })
      if not ok or not c then
        c_out.failure = "connect"
        return
      end
      local _ <close> = c
      guarded(c, function() program(c, rng, c_sent, c_recv, c_out, mode == "calm" and mode) end, c_out)
    end)
    local victim = mode and 0 or rng(0, 3)   -- 0, 3: nobody
    quench.sleep(unit * rng(0, 400) / 100)
    if victim == 1 then server:abort() elseif victim == 2 then client:abort() end
    client:join()
    srv:close()
    -- the server may still wait in accept, or on a peer that is gone: bound it
    if not quench.timeout(2 + 100 * unit, server.join, server) then server:abort() end
  end)
  local function check(received, sent, what)
    local r, s = table.concat(received), table.concat(sent)
    assert(#r <= #s and s:sub(1, #r) == r,
      ("seed %d: %s received %d bytes, not a prefix of the %d sent"):format(seed, what, #r, #s))
    return #r
  end
  return check(s_recv, c_sent, "server"), check(c_recv, s_sent, "client"), c_out, s_out
end

describe("random cancellation over TLS streams", function()
  it(("keeps both byte streams intact under drops and aborts (%d seeds)"):format(SEEDS), function()
    local bytes, raised, failures, completed = 0, 0, 0, 0
    for seed = 1, SEEDS do
      local a, b, c_out, s_out = run_seed(seed)
      bytes = bytes + a + b
      for _, o in ipairs({ c_out, s_out }) do
        if o.raised then raised = raised + 1 end
        if o.failure then failures = failures + 1 end
        if o.done then completed = completed + 1 end
      end
    end
    -- the programs did reach every case: data moved, handshakes were dropped
    -- (closed streams), failures came back as values, programs ran through
    assert.is_true(bytes > 0)
    assert.is_true(raised > 0, "no dropped handshake closed a stream")
    assert.is_true(failures > 0)
    assert.is_true(completed > 0)
  end)
end)
