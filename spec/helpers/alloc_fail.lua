-- Shared by the allocation-failure regressions (spec/regress/alloc_*_spec.lua):
-- run a body once to learn where it marks, then once per allocation after
-- the mark with that allocation failing.
local quench = require "quench"

local M = {}

function M.is_oom(e) return tostring(e):find("out of memory", 1, true) ~= nil end

-- Run body(mark) once to learn the core's allocation count where it calls
-- mark(), then once for each of the next n allocations failing. Calls
-- check(ok, err_or_result) for each of those runs; returns how many raised.
function M.fail_after_mark(n, body, check)
  local marked
  quench.run({ clock = "virtual", seed = 1 }, body, function() marked = quench.stats().allocs end)
  local raised = 0
  for k = marked + 1, marked + n do
    local ok, res = pcall(quench.run, { clock = "virtual", seed = 1, fail_alloc = k }, body,
      function() end)
    if not ok then
      raised = raised + 1
      assert(M.is_oom(res), "fail_alloc = " .. k .. ": " .. tostring(res))
    end
    check(ok, res, k)
  end
  return raised
end

return M
