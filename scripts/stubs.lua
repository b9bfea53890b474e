-- Read the API stubs (docs/api/src/*.lua, LDoc), the one source of the
-- reference: shared by scripts/gen_meta.lua and scripts/gen_cancel_tables.lua.
--
-- stubs.parse(paths) -> entries, classes, class_order
--   entries: in file order, each { name = "quench.x" | "Class:m", args = "a, b",
--            doc = { comment lines, without the leading "-- " }, file = path }
--   classes: name -> { name, doc } for every `@type Class`
local stubs = {}

function stubs.parse(paths)
  local entries, classes, class_order = {}, {}, {}
  for _, path in ipairs(paths) do
    local f = assert(io.open(path))
    local block = {}
    for line in f:lines() do
      local name, args = line:match("^function%s+([%w_%.:]+)%s*%((.-)%)")
      if name then
        entries[#entries + 1] = { name = name, args = args, doc = block, file = path }
        block = {}
      elseif line:match("^%-%-") then
        if line:match("^%-%-%-") then block = {} end
        local text = line:gsub("^%-%-%-?%s?", "")
        block[#block + 1] = text
        local class = text:match("^@type%s+([%w_]+)")
        if class and not classes[class] then
          classes[class] = { name = class, doc = block }
          class_order[#class_order + 1] = class
        end
      else
        block = {}
      end
    end
    f:close()
  end
  return entries, classes, class_order
end

-- Join two lines of a wrapped paragraph: a word broken at its hyphen
-- ("in-" / "flight") is joined without a space.
local function join(a, b)
  if a:match("%a%-$") then return a .. b end
  return a .. " " .. b
end

-- The "**Cancel safety.**" paragraph of an entry's doc, as one line, and
-- its drop points: the bullets `* before it waits: ...`, `* while
-- waiting: ...` and `* given, not resumed: ...` that follow it (nil when
-- it has none).
function stubs.cancel_safety(doc)
  local para, points, state = {}, nil, "before"
  for _, text in ipairs(doc) do
    if state == "before" then
      local first = text:match("^%*%*Cancel safety%.%*%*%s*(.*)")
      if first then
        para[1] = first
        state = "para"
      end
    elseif state == "para" then
      if text == "" then
        state = "points"
      elseif text:match("^@") then
        break
      else
        para[#para] = join(para[#para], text)
      end
    elseif state == "points" then
      local key, rest = text:match("^%*%s+([%a ,]+):%s*(.*)")
      if key then
        points = points or {}
        points[#points + 1] = { key = key, text = rest }
      elseif points and text:match("^%s+%S") then
        local last = points[#points]
        last.text = join(last.text, (text:gsub("^%s+", "")))
      else
        break
      end
    end
  end
  if #para == 0 then return nil end
  return para[1], points
end

return stubs
