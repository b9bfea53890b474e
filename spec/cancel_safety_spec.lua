-- Cancel safety by specification (docs/design.md S14): every waiting op of channels
-- and locks is dropped at every kind of point (a select against a ready or
-- near timer, a timeout, an abort of the waiting task), many times over, and
-- nothing is lost, duplicated or left held.
local quench = require "quench"

local ITERATIONS = 3000

-- One way to wait for `op_fn()` (a function making a fresh op), chosen at
-- random: returns ok, results... where ok says whether the op completed.
local function attempt(rng, op_fn, direct)
  local how = rng(5)
  if how == 1 then
    return true, direct()
  elseif how == 2 then
    local r = table.pack(quench.select(op_fn(), quench.sleep_op(rng(0, 2) / 1000)))
    if r[1] == 1 then return true, table.unpack(r, 2, r.n) end
    return false
  elseif how == 3 then
    local r = table.pack(quench.select_biased(quench.sleep_op(0), op_fn()))
    if r[1] == 2 then return true, table.unpack(r, 2, r.n) end
    return false
  elseif how == 4 then
    local r = table.pack(quench.timeout(rng(0, 3) / 1000, op_fn()))
    if r[1] then return true, table.unpack(r, 2, r.n) end
    return false
  else
    -- in a helper task aborted after a random delay; it records its result
    -- with no await between the op's return and the record
    local got
    local h = quench.spawn(function() got = table.pack(direct()) end)
    quench.sleep(rng(0, 3) / 1000)
    h:abort()
    if got then return true, table.unpack(got, 1, got.n) end
    return false
  end
end

local function rng_for(seed)
  local x = seed
  return function(a, b)
    x = (x * 1103515245 + 12345) % 2147483648
    if b == nil then a, b = 1, a end
    return a + x % (b - a + 1)
  end
end

describe("cancel safety (S14)", function()
  for _, capacity in ipairs({ 1, 3, false }) do
    it("channel(" .. tostring(capacity or "unbounded") .. "): a dropped recv or send "
      .. "loses and duplicates nothing", function()
      quench.run({ clock = "virtual", seed = 11 }, function()
        local rng = rng_for(42)
        local ch = quench.channel(capacity or nil)
        local received = {}
        local producer = quench.spawn(function()
          local i = 1
          while i <= ITERATIONS do
            local ok, sent = attempt(rng, function() return ch:send_op(i) end,
              function() return ch:send(i) end)
            if ok and sent then i = i + 1 end   -- not delivered: send the same value again
            if rng(4) == 1 then quench.sleep(rng(0, 2) / 1000) end
          end
          ch:close()
        end)
        while true do
          local ok, v, err = attempt(rng, function() return ch:recv_op() end,
            function() return ch:recv() end)
          if ok then
            if v == nil then assert.are.equal("closed", err) break end
            received[#received + 1] = v
          end
        end
        producer:join()
        assert.are.equal(ITERATIONS, #received)
        for i = 1, ITERATIONS do
          if received[i] ~= i then error("at " .. i .. " got " .. tostring(received[i])) end
        end
      end)
    end)
  end

  it("mutex: a dropped lock waiter never holds the lock; holders never overlap", function()
    quench.run({ clock = "virtual", seed = 5 }, function()
      local rng = rng_for(7)
      local m = quench.mutex()
      local inside, acquired = 0, 0
      local workers = {}
      for w = 1, 8 do
        workers[w] = quench.spawn(function()
          for _ = 1, ITERATIONS // 8 do
            local ok, guard = attempt(rng, function() return m:lock_op() end,
              function() return m:lock() end)
            if ok then
              acquired = acquired + 1
              inside = inside + 1
              assert(inside == 1, "two holders")
              quench.sleep(rng(0, 2) / 1000)
              inside = inside - 1
              guard:release()
            end
          end
        end)
      end
      for w = 1, 8 do workers[w]:join() end
      assert.is_true(acquired > 0)
      assert.is_false(m:is_locked())
      assert.is_not_nil(m:try_lock())
    end)
  end)

  it("semaphore: a dropped acquire never keeps a permit", function()
    quench.run({ clock = "virtual", seed = 9 }, function()
      local rng = rng_for(3)
      local s = quench.semaphore(3)
      local held = 0
      local workers = {}
      for w = 1, 6 do
        workers[w] = quench.spawn(function()
          for _ = 1, ITERATIONS // 6 do
            local k = rng(3)
            local ok, permit = attempt(rng, function() return s:acquire_op(k) end,
              function() return s:acquire(k) end)
            if ok then
              held = held + k
              assert(held <= 3, "over-subscribed")
              quench.sleep(rng(0, 2) / 1000)
              held = held - k
              permit:release()
            end
          end
        end)
      end
      for w = 1, 6 do workers[w]:join() end
      assert.are.equal(3, s:available())
    end)
  end)

  it("broadcast: a dropped recv loses nothing", function()
    quench.run({ clock = "virtual", seed = 1 }, function()
      local rng = rng_for(99)
      local tx = quench.broadcast(ITERATIONS)
      local rx = tx:subscribe()
      quench.spawn(function()
        for i = 1, ITERATIONS do
          tx:send(i)
          if rng(3) == 1 then quench.sleep(rng(0, 2) / 1000) end
        end
        tx:close()
      end)
      local n = 0
      while true do
        local ok, v = attempt(rng, function() return rx:recv_op() end, function() return rx:recv() end)
        if ok then
          if v == nil then break end
          n = n + 1
          assert.are.equal(n, v)
        end
      end
      assert.are.equal(ITERATIONS, n)
    end)
  end)
end)
