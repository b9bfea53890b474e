-- Randomized cancellation programs (spec/fuzz/cancel_random.lua): a fixed
-- budget of seeds in CI, each program deterministic for its seed on the
-- virtual clock. A failing seed is printed with the one command that
-- reproduces it. Longer runs: docs/how-quench-is-tested.md.
--   FUZZ_PROGRAMS=n   programs to run (default 20000; 6000 under ASan, 1500 under
--                     valgrind: scripts/test.sh sets QUENCH_UNDER_VALGRIND=1)
--   FUZZ_SEED=n       first seed (default 1)
local quench = require "quench"
local fuzz = require "fuzz.cancel_random"

local function default_count()
  if os.getenv("QUENCH_UNDER_VALGRIND") == "1" then return 1500 end
  if (os.getenv("LD_PRELOAD") or ""):match("libasan") then return 6000 end
  return 20000
end

local COUNT = tonumber(os.getenv("FUZZ_PROGRAMS") or "") or default_count()
local FIRST = tonumber(os.getenv("FUZZ_SEED") or "1") // 1

describe("random cancellation programs", function()
  it(string.format("%d programs from seed %d keep every invariant", COUNT, FIRST), function()
    local failed, report = 0, {}
    local totals = { tasks = 0, cleanups = 0, values = 0, joins = 0, refused = 0, closed = 0 }
    local t0 = os.clock()
    for seed = FIRST, FIRST + COUNT - 1 do
      local violations, info = fuzz.run(seed)
      for k in pairs(totals) do totals[k] = totals[k] + info[k] end
      if #violations > 0 then
        failed = failed + 1
        if failed <= 10 then
          report[#report + 1] = string.format("seed %d (reproduce: " .. fuzz.repro .. "):\n    %s",
            seed, seed, table.concat(violations, "\n    ", 1, math.min(#violations, 5)))
        end
      end
    end
    print(string.format("\nrandom cancellation: %d programs, %d tasks, %d cleanups, %d values sent, "
      .. "%d joins checked, %d resumes of waiting task threads refused, %d closed, %.1f s CPU",
      COUNT, totals.tasks, totals.cleanups, totals.values, totals.joins, totals.refused,
      totals.closed, os.clock() - t0))
    assert(failed == 0, string.format("%d of %d programs broke an invariant:\n%s", failed, COUNT,
      table.concat(report, "\n")))
  end)

  it("generates the same program for the same seed", function()
    assert.are.equal(fuzz.dump(fuzz.generate(42)), fuzz.dump(fuzz.generate(42)))
    assert.are_not.equal(fuzz.dump(fuzz.generate(42)), fuzz.dump(fuzz.generate(43)))
  end)

  it("finds a broken invariant (the checker checks)", function()
    -- break quench on purpose: a channel receive that loses one message in
    -- seven. The checker must notice on some seed.
    local index = getmetatable(quench.channel()).__index
    local recv, n = index.recv, 0
    index.recv = function(ch, ...)
      local v, err = recv(ch, ...)
      n = n + 1
      if v ~= nil and n % 7 == 0 then return recv(ch, ...) end
      return v, err
    end
    local found
    for seed = 1, 200 do
      local ok, violations = pcall(fuzz.run, seed)
      if not ok or #violations > 0 then found = ok and violations[1] or violations break end
    end
    index.recv = recv
    assert.is_truthy(found, "200 programs ran over a channel that loses messages, unnoticed")
  end)
  assert(quench)
end)
