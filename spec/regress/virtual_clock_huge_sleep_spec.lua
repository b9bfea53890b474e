-- quench.sleep(math.huge) returned at now() == 1e10 (a huge duration was
-- capped at 1e10 s), and two sleep(1e10) ended at 18446744073.71 s, 1.5e9 s
-- early (the second deadline saturated at the clock's last nanosecond).
local quench = require "quench"

local function virtual(fn)
  return quench.run({ clock = "virtual" }, fn)
end

describe("a huge sleep on the virtual clock", function()
  it("sleep(math.huge) waits until cancelled", function()
    local ok, err, t = virtual(function()
      local h = quench.spawn(function() quench.sleep(math.huge) end)
      quench.sleep(5)
      h:cancel("enough")
      local ok, err = h:join()
      return ok, err, quench.now()
    end)
    assert.is_false(ok)
    assert.is_true(quench.is_cancelled(err))
    assert.are.equal(5, t)
  end)

  it("sleep(math.huge) alone is a deadlock, not a wake-up at 1e10", function()
    local reached
    local ok, err = pcall(virtual, function()
      quench.sleep(math.huge)
      reached = quench.now()
    end)
    assert.is_false(ok)
    assert.matches("deadlock", err)
    assert.is_nil(reached)
  end)

  it("a timeout around it fires at its own deadline", function()
    local ok, err, t = virtual(function()
      local ok, err = quench.timeout(2, quench.sleep, math.huge)
      return ok, err, quench.now()
    end)
    assert.is_false(ok)
    assert.is_true(quench.is_timeout(err))
    assert.are.equal(2, t)
  end)

  it("large finite sleeps add up exactly while the clock can count them", function()
    assert.are.equal(1.8e10, virtual(function()
      quench.sleep(1e10)
      quench.sleep(8e9)
      return quench.now()
    end))
  end)

  it("a sleep past the clock's range (584 years) never wakes early: it waits for ever", function()
    for _, second in ipairs({ 1e10, 2^53, 1e300 }) do
      local woke
      local ok, err = pcall(virtual, function()
        quench.sleep(1e10)
        quench.sleep(second)
        woke = quench.now()
      end)
      assert.is_false(ok)
      assert.matches("deadlock", err)
      assert.is_nil(woke, "woke at " .. tostring(woke))
    end
  end)

  it("sleep_op and deadline take math.huge too", function()
    virtual(function()
      local i = quench.select(quench.sleep_op(math.huge), quench.sleep_op(1))
      assert.are.equal(2, i)
      local ok = quench.deadline(math.huge, quench.sleep, 3)
      assert.is_true(ok)
      assert.are.equal(4, quench.now())
    end)
  end)
end)
