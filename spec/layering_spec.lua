-- The binding's arrows run one way (docs/design.md §1): the call graph of
-- lua/*.c (file A -> file B when A names a non-static lq_ function B
-- defines) has no circle, nothing calls into the module's root
-- (lua/quench.c), and the floor files call only one another.

local FLOOR = {
  ["module.c"] = true, ["args.c"] = true, ["duration.c"] = true,
  ["error.c"] = true, ["task_state.c"] = true, ["keep.c"] = true,
}

local function slurp(path)
  local f = assert(io.open(path), "cannot open " .. path)
  local s = f:read("a")
  f:close()
  return s
end

local function binding_files()
  local p = assert(io.popen("ls lua/*.c"))
  local files = {}
  for path in p:lines() do files[#files + 1] = path end
  p:close()
  assert(#files > 10, "no binding sources found (run from the repository root)")
  return files
end

-- file name -> source without comments; function name -> defining file
local function scan()
  local src, defs = {}, {}
  for _, path in ipairs(binding_files()) do
    local name = path:match("([^/]+)$")
    local s = slurp(path):gsub("/%*.-%*/", " ")
    src[name] = s
    for line in s:gmatch("[^\n]+") do
      local fn = line:match("^[%a_][%w_ %*]-%f[%w_](lq_[%w_]+)%s*%(")
      if fn and not line:match("^static") and not line:match("^extern")
         and not line:match("^typedef") and not line:find(";", 1, true) then
        defs[fn] = defs[fn] or name
      end
    end
  end
  return src, defs
end

local function graph()
  local src, defs = scan()
  local edges = {}
  for name, s in pairs(src) do
    edges[name] = {}
    for ident in s:gmatch("%f[%w_](lq_[%w_]+)") do
      local d = defs[ident]
      if d and d ~= name then edges[name][d] = ident end
    end
  end
  return edges, defs
end

-- A circle as a list of files, or nil.
local function find_circle(edges)
  local state, stack = {}, {}
  local function visit(v)
    state[v] = "open"
    stack[#stack + 1] = v
    for w in pairs(edges[v] or {}) do
      if state[w] == "open" then
        local circle, on = {}, false
        for _, x in ipairs(stack) do
          if x == w then on = true end
          if on then circle[#circle + 1] = x end
        end
        circle[#circle + 1] = w
        return circle
      elseif state[w] == nil then
        local c = visit(w)
        if c then return c end
      end
    end
    stack[#stack] = nil
    state[v] = "done"
  end
  local names = {}
  for v in pairs(edges) do names[#names + 1] = v end
  table.sort(names)
  for _, v in ipairs(names) do
    if state[v] == nil then
      local c = visit(v)
      if c then return c end
    end
  end
end

describe("the binding's layering", function()
  local edges, defs = graph()

  it("finds the functions it checks", function()
    assert.equal("coro.c", defs.lq_await_ctx)
    assert.equal("task_state.c", defs.lq_push_extras)
  end)

  it("has no circle of calls between files", function()
    local c = find_circle(edges)
    assert(c == nil, c and ("a circle: " .. table.concat(c, " -> ")))
  end)

  it("never calls into the module's root, lua/quench.c", function()
    for name, out in pairs(edges) do
      assert(out["quench.c"] == nil,
             name .. " calls " .. tostring(out["quench.c"]) .. " in lua/quench.c")
    end
  end)

  it("keeps the floor files calling only one another", function()
    for name in pairs(FLOOR) do
      assert(edges[name], "no lua/" .. name)
      for d, ident in pairs(edges[name]) do
        assert(FLOOR[d], "floor file " .. name .. " calls " .. ident .. " in " .. d)
      end
    end
  end)
end)
