-- The guides' cancel-safety tables, generated from the API stubs
-- (docs/api/src/*.lua), so that each op's cancel safety is written once.
--
--   lua5.4 scripts/gen_cancel_tables.lua           check: list the stale tables, exit 1 if any
--   lua5.4 scripts/gen_cancel_tables.lua --write   rewrite them in place
--
-- A table in a guide sits between two markers naming the entries it shows:
--
--   <!-- cancel-safety: Channel:send Channel:send_op Channel:recv ... -->
--   ...generated...
--   <!-- /cancel-safety -->
--
-- The columns are the drop points ("before it waits", "while waiting",
-- "given, not resumed"); a stub gives them as bullets right after its
-- "**Cancel safety.**" paragraph. An entry without bullets takes them from
-- the entry its paragraph starts by naming ("As `recv`", "As
-- `Mutex:lock`"); an entry with neither (one that never waits) gets its
-- paragraph in the first column. Adjacent entries with the same cells share
-- one row. A table none of whose entries has drop points has two columns,
-- the operation and its paragraph. A marker may name its third column: `cancel-safety[ready, not
-- resumed]: ...`.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local stubs = require "stubs"

local GUIDES = {
  "docs/sync.md", "docs/io.md", "docs/cancellation.md", "docs/structured.md",
  "docs/signals.md", "docs/http.md", "docs/openresty.md",
}
local POINTS = { "before it waits", "while waiting", "given, not resumed" }

local function stub_files()
  local files = {}
  local p = assert(io.popen("ls docs/api/src/*.lua"))
  for line in p:lines() do files[#files + 1] = line end
  p:close()
  return files
end

local entries = stubs.parse(stub_files())
local by_name = {}
for _, e in ipairs(entries) do by_name[e.name] = e end

local function display(e)
  return "`" .. e.name .. "(" .. e.args .. ")`"
end

-- The cells of an entry: { c1, c2, c3 } and whether they are drop points.
local function cells(name, seen)
  local e = assert(by_name[name], "gen_cancel_tables: no stub entry named " .. name)
  local para, points = stubs.cancel_safety(e.doc)
  assert(para, "gen_cancel_tables: " .. name .. " has no Cancel safety paragraph")
  if points then
    local by_key = {}
    for _, p in ipairs(points) do by_key[p.key] = p.text end
    local row = {}
    for i, key in ipairs(POINTS) do
      row[i] = by_key[key] or (i == 3 and by_key["ready, not resumed"]) or ""
    end
    return row, true
  end
  local ref = para:match("^As `([%w_:%.]+)`")
  if ref then
    if not ref:find("[:%.]") then
      local class = name:match("^([%w_]+):") or name:match("^(.*)%.[%w_]+$")
      ref = class .. (name:find(":", 1, true) and ":" or ".") .. ref
    end
    seen = seen or {}
    if by_name[ref] and not seen[ref] then
      seen[ref] = true
      local row, structured = cells(ref, seen)
      if structured then return row, true end
    end
  end
  return { para, "", "" }, false
end

local function escape(s) return (s:gsub("|", "\\|")) end

local function table_for(names, third)
  local rows, any_points = {}, false
  for _, name in ipairs(names) do
    local row, structured = cells(name)
    any_points = any_points or structured
    local key = table.concat(row, "\0")
    local last = rows[#rows]
    if last and last.key == key then
      last.labels[#last.labels + 1] = display(by_name[name])
    else
      rows[#rows + 1] = { key = key, cells = row, labels = { display(by_name[name]) } }
    end
  end
  if not any_points then
    -- no entry gives drop points: one column, the paragraph
    local out = { "| operation | cancel safety |", "|---|---|" }
    for _, r in ipairs(rows) do
      out[#out + 1] = string.format("| %s | %s |", table.concat(r.labels, ", "), escape(r.cells[1]))
    end
    return table.concat(out, "\n")
  end
  local out = {
    "| operation | before it waits | while waiting | " .. (third or POINTS[3]) .. " |",
    "|---|---|---|---|",
  }
  for _, r in ipairs(rows) do
    local c = r.cells
    out[#out + 1] = string.format("| %s | %s | %s | %s |", table.concat(r.labels, ", "),
      escape(c[1]), escape(c[2]), escape(c[3]))
  end
  return table.concat(out, "\n")
end

-- Regenerate every marked table of one guide's text.
local MARKED = "(<!%-%- cancel%-safety(%[?[^%]:]*%]?): ([^\n]-) %-%->\n)(.-)(<!%-%- /cancel%-safety %-%->)"
local function regenerate(text, path)
  return (text:gsub(MARKED,
    function(open, third, list, _, close)
      local names = {}
      for n in list:gmatch("%S+") do names[#names + 1] = n end
      assert(#names > 0, path .. ": a cancel-safety marker names no entry")
      third = third:match("^%[(.*)%]$")
      return open .. table_for(names, third) .. "\n" .. close
    end))
end

local write = arg[1] == "--write"
local stale = {}
for _, path in ipairs(GUIDES) do
  local f = io.open(path)
  if f then
    local text = f:read("a")
    f:close()
    local new = regenerate(text, path)
    if new ~= text then
      stale[#stale + 1] = path
      if write then
        f = assert(io.open(path, "w"))
        f:write(new)
        f:close()
      end
    end
  end
end
if write then
  for _, p in ipairs(stale) do print("rewrote " .. p) end
elseif #stale > 0 then
  print("stale cancel-safety tables (run: lua5.4 scripts/gen_cancel_tables.lua --write): "
    .. table.concat(stale, ", "))
  os.exit(1)
end
