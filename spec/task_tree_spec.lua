-- Task tree introspection: parent and spawn site in quench.tasks(),
-- quench.dump and quench.dump_on_signal.
local quench = require "quench"
local T = quench.test

local function entry(id)
  for _, t in ipairs(quench.tasks()) do if t.id == id then return t end end
end

describe("task tree", function()
  it("quench.tasks() entries carry the parent's id", T(function()
    local main = quench.current():id()
    local child, grandchild
    quench.scope(function(s)
      child = s:spawn(function()
        grandchild = quench.spawn(quench.sleep, 5)
        quench.sleep(2)
      end)
      quench.sleep(1)
      assert.are.equal(main, entry(child:id()).parent)
      assert.are.equal(child:id(), entry(grandchild:id()).parent)
      assert.is_nil(entry(main).parent)
    end)
    grandchild:abort()
  end))

  it("records the spawn site (file:line of the user's code) when asked", T(function()
    assert.is_false(quench.record_spawn_sites(true))
    local h = quench.spawn(quench.sleep, 1); local line = debug.getinfo(1, "l").currentline
    assert.are.equal("spec/task_tree_spec.lua:" .. line, entry(h:id()).site)
    quench.scope(function(s)
      local kid = s:spawn(quench.sleep, 1); local l2 = debug.getinfo(1, "l").currentline
      assert.are.equal("spec/task_tree_spec.lua:" .. l2, entry(kid:id()).site)   -- not structured.lua
    end)
    assert.is_true(quench.record_spawn_sites(false))
    local off = quench.spawn(quench.sleep, 1)
    assert.is_nil(entry(off:id()).site)
    h:join(); off:join()
  end))

  it("every entry says where the task's function is defined, without any setting", T(function()
    local function worker() quench.sleep(10) end
    local line = debug.getinfo(worker, "S").linedefined
    local pending = quench.spawn(worker)                  -- not started yet
    local many = quench.spawn(function(a, b, c, d, e) quench.sleep(a + b + c + d + e) end,
      1, 2, 3, 4, 5)                                      -- its arguments in a table
    local here = debug.getinfo(1, "l").currentline - 2
    local native = quench.spawn(quench.sleep, 10)          -- a C function: nothing to name
    assert.matches("task_tree_spec%.lua:" .. line .. "$", entry(pending:id()).defined)
    assert.is_nil(entry(pending:id()).site)               -- spawn sites stay opt-in
    quench.yield()                                        -- now they wait in sleep
    assert.are.equal("suspended", entry(pending:id()).state)
    assert.matches("task_tree_spec%.lua:" .. line .. "$", entry(pending:id()).defined)
    assert.matches("task_tree_spec%.lua:" .. here .. "$", entry(many:id()).defined)
    assert.is_nil(entry(native:id()).defined)
    assert.matches("runs [^\n]*task_tree_spec%.lua:" .. line,
      quench.dump({ file = false, tracebacks = false }))
    pending:abort(); many:abort(); native:abort()
  end))

  it("dump prints the tree with state, name, age, waiting and tracebacks", T(function()
    quench.record_spawn_sites(true)
    local function wait_here(ch) local v = ch:recv(); return v end
    local ch = quench.channel()
    local parent = quench.spawn(function()
      local kid = quench.spawn(wait_here, ch)
      kid:name("kid")
      quench.sleep(10)
    end)
    parent:name("parent")
    quench.sleep(2)
    local text = quench.dump({ file = false })
    assert.matches("quench: 3 live tasks at 2.000s", text, 1, true)
    local p_line = text:match('\n(    #%d+ "parent" suspended %(sleep until 10.0%) age 2.000s spawned at '
      .. 'spec/task_tree_spec.lua:%d+)')
    assert.is_truthy(p_line, text)
    local kid_at = text:find('\n      #%d+ "kid" suspended %(channel recv%) age 2.000s')
    assert.is_truthy(kid_at, text)                       -- indented under its parent
    assert.is_true(kid_at > text:find(p_line, 1, true))
    -- the kid's traceback
    assert.matches("in method 'recv'\n[^\n]*task_tree_spec.lua:%d+: in function", text)
    assert.is_nil(quench.dump({ file = false, tracebacks = false }):match("stack traceback"))
    parent:abort()
    for _, t in ipairs(quench.tasks()) do if t.handle ~= quench.current() then t.handle:abort() end end
  end))

  it("a task whose parent ended is shown at the top, naming the parent", T(function()
    local orphan
    quench.spawn(function() orphan = quench.spawn(quench.sleep, 5) end):join()
    local text = quench.dump({ file = false })
    assert.matches("#" .. orphan:id() .. " suspended .-%(parent #%d+ ended%)", text)
    orphan:abort()
  end))

  it("dump writes to a file", T(function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    quench.dump({ file = f })
    f:close()
    local text = assert(io.open(path)):read("a")
    os.remove(path)
    assert.matches("^quench: 1 live task at", text)
  end))

  it("dump_on_signal dumps on each delivery of the signal", function()
    local path = os.tmpname()
    quench.run(function()
      local f = assert(io.open(path, "w"))
      local h = quench.dump_on_signal("SIGUSR2", { file = f, tracebacks = false })
      quench.spawn(function() os.execute("kill -USR2 $PPID") end):join()
      local ok = quench.timeout(10, function()
        while f:seek("end") == 0 do quench.sleep(0.01) end
      end)
      h:abort()
      f:close()
      assert.is_true(ok)
    end)
    local text = assert(io.open(path)):read("a")
    os.remove(path)
    assert.matches('"quench.dump_on_signal SIGUSR2" running', text)
  end)

  it("rejects bad arguments", T(function()
    assert.has_error(function() quench.dump(5) end,
      "bad argument #1 to 'dump' (table expected, got number)")
    assert.has_error(function() quench.dump({ out = 1 }) end,
      "bad argument #1 to 'dump' (unknown option 'out')")
    assert.has_error(function() quench.dump_on_signal("SIGFOO") end)
    assert.has_error(function() quench.record_spawn_sites(1) end)
  end))
end)
