-- The LuaLS meta file (scripts/gen_meta.lua, generated from the API stubs by
-- the build and installed by `luarocks make`): it is valid Lua, declares the
-- module `---@meta quench`, and has every public function of the module
-- table and every method documented in docs/api/src, each with all of its
-- parameters (a `---@param` for each name in its signature).
local quench = require "quench"
local api_surface = require "helpers.api_surface"

local SH = "env -u LD_PRELOAD "   -- helper commands run without the sanitizer runtimes

local function generate()
  local out = os.tmpname()
  local ok = os.execute(SH .. "sh -c 'lua5.4 scripts/gen_meta.lua " .. out .. " docs/api/src/*.lua'")
  assert(ok, "scripts/gen_meta.lua failed")
  local f = assert(io.open(out))
  local text = f:read("a")
  f:close()
  os.remove(out)
  return text
end

-- name -> { params = {...}, declared = {name = true} } for every function of the meta file
local function declarations(text)
  local decls, pending = {}, {}
  for line in text:gmatch("[^\n]*") do
    local p = line:match("^%-%-%-@param%s+([%w_%.]+)")
    if p then pending[#pending + 1] = p end
    local name, args = line:match("^function%s+([%w_%.:]+)%((.-)%)")
    if name then
      local d = { params = {}, documented = {} }
      for a in args:gmatch("[^,%s]+") do d.params[#d.params + 1] = a end
      for _, q in ipairs(pending) do d.documented[q] = true end
      decls[name] = d
      pending = {}
    elseif not line:match("^%-%-") then
      pending = {}
    end
  end
  return decls
end

local function module_functions() return api_surface.module_functions(quench) end

local function stub_entries()
  local names = {}
  local p = assert(io.popen(SH .. "sh -c 'cat docs/api/src/*.lua'"))
  for line in p:lines() do
    local name, args = line:match("^function%s+([%w_%.:]+)%s*%((.-)%)")
    if name then names[name] = args end
  end
  p:close()
  return names
end

describe("LuaLS meta file", function()
  local text = generate()
  local decls = declarations(text)

  it("is Lua and declares the module", function()
    assert(load(text, "=meta", "t"), "the meta file does not compile")
    assert.equal("---@meta quench", text:match("^[^\n]*"))
    assert.truthy(text:find("\n---@class quench\n", 1, true))
    assert.truthy(text:find("\nreturn quench\n", 1, true))
  end)

  it("declares every function of the module table", function()
    local missing = {}
    for _, name in ipairs(module_functions()) do
      if not decls[name] then missing[#missing + 1] = name end
    end
    table.sort(missing)
    assert(#missing == 0, "not in the meta file: " .. table.concat(missing, ", "))
  end)

  it("declares every documented method with each of its parameters", function()
    local bad = {}
    for name, args in pairs(stub_entries()) do
      local d = decls[name]
      if not d then
        bad[#bad + 1] = name .. " (missing)"
      else
        local want = {}
        for a in args:gmatch("[^,%s]+") do want[#want + 1] = a end
        if table.concat(want, ",") ~= table.concat(d.params, ",") then
          bad[#bad + 1] = name .. " (parameters " .. table.concat(d.params, ",") .. ")"
        end
        for _, a in ipairs(want) do
          if not d.documented[a] then bad[#bad + 1] = name .. " (no ---@param " .. a .. ")" end
        end
      end
    end
    table.sort(bad)
    assert(#bad == 0, "meta file entries wrong: " .. table.concat(bad, ", "))
  end)

  it("marks the <close>-able classes", function()
    assert.truthy(text:find("---@class quench.Channel: quench.Closable", 1, true))
    assert.truthy(text:find("---@class quench.Task: quench.Closable", 1, true))
  end)
end)
