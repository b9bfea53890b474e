-- A select over two receive ops of one channel returned the second value
-- while the first went back to the queue: each op had been handed a value,
-- and the select took the winner's whichever it was.
local quench = require "quench"

local function run(seed, fn)
  return quench.run({ clock = "virtual", seed = seed }, fn)
end

describe("a select over receive ops of one channel", function()
  it("keeps the channel's order, whatever the seed", function()
    for seed = 1, 16 do
      local got = run(seed, function()
        local ch = quench.channel()
        local h = quench.spawn(function()
          local _, v = quench.select(ch:recv_op(), ch:recv_op())
          return v
        end)
        quench.yield()                          -- both ops wait
        ch:send("v1")
        ch:send("v2")
        local _, first = h:join()
        return { first, ch:recv() }
      end)
      assert.are.same({ "v1", "v2" }, got, "seed " .. seed)
    end
  end)

  it("keeps the order with more ops and more values, biased or not", function()
    for seed = 1, 16 do
      local got = run(seed, function()
        local ch = quench.channel()
        local out = {}
        local h = quench.spawn(function()
          for _ = 1, 3 do
            local sel = seed % 2 == 0 and quench.select or quench.select_biased
            local _, v = sel(ch:recv_op(), ch:recv_op(), ch:recv_op())
            out[#out + 1] = v
          end
        end)
        quench.yield()
        for i = 1, 5 do ch:send(i) end
        h:join()
        while ch:len() > 0 do out[#out + 1] = ch:recv() end
        return out
      end)
      assert.are.same({ 1, 2, 3, 4, 5 }, got, "seed " .. seed)
    end
  end)

  it("keeps the order when a select's loser gave its value back to another receiver", function()
    for seed = 1, 8 do
      local got = run(seed, function()
        local ch = quench.channel()
        local out = {}
        local a = quench.spawn(function()
          local _, v = quench.select(ch:recv_op(), quench.sleep_op(0.5))
          out[#out + 1] = v
        end)
        local b = quench.spawn(function()
          out[#out + 1] = ch:recv()
          out[#out + 1] = ch:recv()
        end)
        quench.yield()
        ch:send(1)
        ch:send(2)
        a:abort()                               -- 1 was handed to a, which never took it
        b:join()
        return out
      end)
      assert.are.same({ 1, 2 }, got, "seed " .. seed)
    end
  end)
end)

describe("the same op given twice to one select", function()
  it("is refused, naming select and the argument", function()
    quench.run(function()
      local ch = quench.channel()
      ch:send("x")
      local op = ch:recv_op()
      for _, sel in ipairs({ "select", "select_biased" }) do
        local ok, err = pcall(quench[sel], op, op)
        assert.is_false(ok)
        assert.matches("bad argument #2 to 'quench." .. sel .. "' %(the same op as argument #1", err)
      end
      local ok, err = pcall(quench.select, function() end, op, quench.sleep_op(1), op)
      assert.is_false(ok)
      assert.matches("bad argument #4 .*same op as argument #2", err)
      assert.are.equal("x", ch:recv())          -- nothing was started
    end)
  end)
end)
