-- Generate the LuaLS (lua-language-server) definition file of quench from
-- the API stubs in docs/api/src/*.lua, the one source of the reference.
--   lua5.4 scripts/gen_meta.lua OUT.lua docs/api/src/a.lua docs/api/src/b.lua ...
-- The build runs it (CMakeLists.txt, target quench_meta) and `luarocks make`
-- installs the result as quench/meta/quench.lua; spec/meta_spec.lua checks it.
--
-- What it reads from a stub (LDoc): `@type Class` starts a class, whose text
-- mentioning `<close>` makes it closable; `function quench.x.y(a, b)` and
-- `function Class:m(a)` are entries, each with the comment block above it:
-- its first paragraph (the summary), `@tparam[opt] type name text`,
-- `@param[opt] name text`, `@treturn type text` and `@return text`.

package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local stubs_lib = require "stubs"

local out_path = assert(arg[1], "usage: lua5.4 scripts/gen_meta.lua OUT.lua STUB.lua...")
local stubs = table.move(arg, 2, #arg, 1, {})
assert(#stubs > 0, "gen_meta: no stub files given")
table.sort(stubs)

-- LDoc type -> LuaLS type: `?string` is `string?`, `{table,...}` is `table[]`,
-- a stub class `Task` is `quench.Task`.
local classes = {}
local function lua_ls_type(t)
  if t == nil or t == "" then return "any" end
  local optional = false
  if t:sub(1, 1) == "?" then optional, t = true, t:sub(2) end
  local alts = {}
  for alt in t:gmatch("[^|]+") do
    local inner = alt:match("^{(.-),%.%.%.}$")
    if inner then
      alts[#alts + 1] = lua_ls_type(inner) .. "[]"
    elseif classes[alt] then
      alts[#alts + 1] = "quench." .. alt
    else
      alts[#alts + 1] = alt
    end
  end
  local s = table.concat(alts, "|")
  if optional and not s:find("nil", 1, true) then s = s .. "?" end
  return s
end

local function one_line(s)
  return (s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

local entries, parsed_classes, class_order = stubs_lib.parse(stubs)
for k, v in pairs(parsed_classes) do classes[k] = v end

-- An entry's doc: summary, params (by name), returns.
local function describe(doc)
  local summary, params, returns = {}, {}, {}
  local in_summary, last = true, nil
  for _, text in ipairs(doc) do
    local opt, ty, pname, rest = text:match("^@tparam(%[?o?p?t?%]?)%s+(%S+)%s+([%w_%.]+)%s*(.*)")
    local popt, pname2, prest = text:match("^@param(%[?o?p?t?%]?)%s+([%w_%.]+)%s*(.*)")
    local rty, rrest = text:match("^@treturn%s+(%S+)%s*(.*)")
    local rrest2 = text:match("^@return%s*(.*)")
    if ty then
      last = { name = pname, type = lua_ls_type(ty), opt = opt == "[opt]", text = rest }
      params[pname] = last
      in_summary = false
    elseif pname2 then
      last = { name = pname2, type = "any", opt = popt == "[opt]", text = prest }
      params[pname2] = last
      in_summary = false
    elseif rty then
      last = { type = lua_ls_type(rty), text = rrest }
      returns[#returns + 1] = last
      in_summary = false
    elseif rrest2 then
      last = { type = "any", text = rrest2 }
      returns[#returns + 1] = last
      in_summary = false
    elseif text:match("^@") then
      last, in_summary = nil, false
    elseif in_summary then
      if text == "" then
        if #summary > 0 then in_summary = false end
      else
        summary[#summary + 1] = text
      end
    elseif last and text:match("^%s") and #last.text < 160 then
      last.text = last.text .. " " .. text
    end
  end
  return one_line(table.concat(summary, " ")), params, returns
end

local function arg_list(args)
  local list = {}
  for a in args:gmatch("[^,%s]+") do list[#list + 1] = a end
  return list
end

local lines = {}
local function emit(s) lines[#lines + 1] = s end

local function emit_entry(e, fname)
  local summary, params, returns = describe(e.doc)
  if summary ~= "" then emit("--- " .. summary) end
  local list = arg_list(e.args)
  local first_opt_then_required = false
  for i, a in ipairs(list) do
    if a == "..." then
      local p = params["..."]
      local text = p and p.text ~= "" and " " .. one_line(p.text) or ""
      emit("---@param ... " .. (p and p.type or "any") .. text)
    else
      local p = params[a] or { type = "any", opt = false, text = "" }
      emit(string.format("---@param %s%s %s%s", a, p.opt and "?" or "", p.type,
        p.text ~= "" and " " .. one_line(p.text) or ""))
      if i == 1 and p.opt and list[2] and list[2] ~= "..." then
        local p2 = params[list[2]]
        if p2 and not p2.opt then first_opt_then_required = true end
      end
    end
  end
  for _, r in ipairs(returns) do
    emit(string.format("---@return %s%s", r.type, r.text ~= "" and " # " .. one_line(r.text) or ""))
  end
  if first_opt_then_required then
    -- `f([opts,] fn, ...)`: the form without the leading optional table
    local rest = {}
    for i = 2, #list do
      local a = list[i]
      local p = params[a]
      rest[#rest + 1] = a == "..." and "...: any"
        or (a .. (p and p.opt and "?" or "") .. ": " .. (p and p.type or "any"))
    end
    emit("---@overload fun(" .. table.concat(rest, ", ") .. "): ...")
  end
  emit(string.format("function %s(%s) end", fname, table.concat(list, ", ")))
  emit("")
end

emit("---@meta quench")
emit("-- Generated from docs/api/src/*.lua by scripts/gen_meta.lua: edit the stubs, not this file.")
emit("-- LuaLS: add this file's directory to \"workspace.library\".")
emit("")
emit("---@class quench.Closable")
emit("---@field __close fun(self: any) `<close>`-able: leaving the variable's scope closes it")
emit("")
for _, cname in ipairs(class_order) do
  local c = classes[cname]
  local closable = table.concat(c.doc, "\n"):find("<close>", 1, true)
  local summary = describe(c.doc)
  if summary ~= "" then emit("--- " .. summary) end
  emit(string.format("---@class quench.%s%s", cname, closable and ": quench.Closable" or ""))
  emit(string.format("local %s = {}", cname))
  emit("")
end

emit("---@class quench")
emit("---@field _VERSION string the version of quench")
emit("local quench = {}")
emit("")
-- sub-tables (quench.tcp, quench.fs.x...) before their functions
local tables_done = {}
for _, e in ipairs(entries) do
  if not e.name:find(":", 1, true) then
    local parts = {}
    for p in e.name:gmatch("[^%.]+") do parts[#parts + 1] = p end
    for i = 2, #parts - 1 do
      local t = table.concat(parts, ".", 1, i)
      if not tables_done[t] then
        tables_done[t] = true
        emit(t .. " = {}")
      end
    end
  end
end
emit("")
for _, e in ipairs(entries) do
  local cname, method = e.name:match("^([%w_]+):([%w_]+)$")
  if cname then
    assert(classes[cname], "gen_meta: " .. e.file .. ": method of an undeclared class (@type): " .. e.name)
    emit_entry(e, cname .. ":" .. method)
  else
    emit_entry(e, e.name)
  end
end
emit("return quench")

local f = assert(io.open(out_path, "w"))
f:write(table.concat(lines, "\n"), "\n")
f:close()
