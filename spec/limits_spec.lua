-- Resource limits: a million sleeping tasks in one runtime; running out of
-- file descriptors (when quench.tcp / quench.fs exist in the build).
-- A million tasks take ~7 s and 1.6 GB in the normal build; under ASan+UBSan
-- (LD_PRELOADed) they would take ~40 s and 2.4 GB, so the count is 100k
-- there, and 20k under valgrind (QUENCH_UNDER_VALGRIND=1, set by
-- scripts/test.sh). QUENCH_LIMIT_TASKS=n overrides it.
local quench = require "quench"

local function default_tasks()
  if os.getenv("QUENCH_UNDER_VALGRIND") == "1" then return 20000 end
  if (os.getenv("LD_PRELOAD") or ""):match("libasan") then return 100000 end
  return 1000000
end

local N = tonumber(os.getenv("QUENCH_LIMIT_TASKS") or "") or default_tasks()

local function cpath_of_quench()
  for dir in package.cpath:gmatch("[^;]+") do
    local path = dir:gsub("%?", "quench")
    local f = io.open(path, "rb")
    if f then f:close(); return dir end
  end
end

describe("resource limits", function()
  it(string.format("%d tasks sleep at once in one runtime, and all wake", N), function()
    local t0 = os.clock()
    local woke, max_alive, spawn_cpu, heap_mb = 0, 0, 0, 0
    quench.run({ clock = "virtual", seed = 1 }, function()
      local function sleeper(i)
        quench.sleep(1 + i % 100)           -- 100 distinct deadlines
        woke = woke + 1
      end
      for i = 1, N do quench.spawn(sleeper, i) end
      spawn_cpu = os.clock() - t0
      quench.yield()                        -- every task starts and sleeps
      max_alive = quench.stats().alive
      heap_mb = collectgarbage("count") / 1024
      quench.sleep(101)
      assert.are.equal(N, woke)
      assert.are.equal(1, quench.stats().alive)
      assert.are.equal(101, quench.now())
    end)
    local cpu = os.clock() - t0
    print(string.format("\n%d sleeping tasks: spawn %.2f s, total %.2f s CPU, Lua heap %.0f MB "
      .. "(%.0f bytes per sleeping task)", N, spawn_cpu, cpu, heap_mb, heap_mb * 1048576 / N))
    assert.are.equal(N + 1, max_alive)
    assert.is_true(cpu < 120, "too slow: " .. cpu .. " s")
    collectgarbage()
  end)

  it("runs out of file descriptors: nil, \"EMFILE...\", \"EMFILE\", and keeps serving", function()
    if not (quench.tcp or quench.fs) then
      pending("quench.tcp and quench.fs are not in this build")
      return
    end
    local dir = assert(cpath_of_quench(), "quench.so not found on package.cpath")
    local cmd = string.format("ulimit -n 64 && QUENCH_TEST_CPATH='%s' timeout 120 lua5.4 "
      .. "spec/helpers/emfile_child.lua 2>&1", dir)
    local p = assert(io.popen("sh -c \"" .. cmd:gsub('"', '\\"') .. "\""))
    local out = p:read("a")
    p:close()
    assert.is_truthy(out:match("\ndone\n$") or out:match("^done\n$"), "the child did not finish:\n" .. out)
    assert.is_nil(out:match("FAIL"), out)
    assert.is_truthy(out:match("ok "), out)
  end)
end)
