-- What the module offers, read from the loaded module itself: shared by
-- spec/doc_coverage_spec.lua (the stubs cover it) and spec/meta_spec.lua
-- (the LuaLS meta file covers it).
local M = {}

-- Every function reachable from the module table: "quench.spawn",
-- "quench.tcp.listen" (sub-tables without a metatable are walked).
function M.module_functions(quench)
  local names = {}
  local function walk(t, prefix, seen)
    if seen[t] then return end
    seen[t] = true
    for k, v in pairs(t) do
      if type(k) == "string" and not k:match("^_") then
        if type(v) == "function" then
          names[#names + 1] = prefix .. "." .. k
        elseif type(v) == "table" and getmetatable(v) == nil then
          walk(v, prefix .. "." .. k, seen)
        end
      end
    end
  end
  walk(quench, "quench", {})
  return names
end

return M
