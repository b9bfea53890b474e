-- The guides' cancel-safety tables are generated from the API stubs
-- (scripts/gen_cancel_tables.lua): each op's cancel safety is written once,
-- in docs/api/src. The tables are up to date, and every op that waits is in one.
local SH = "env -u LD_PRELOAD "   -- helper commands run without the sanitizer runtimes

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

describe("cancel-safety tables in the guides", function()
  it("are what the stubs generate (lua5.4 scripts/gen_cancel_tables.lua --write)", function()
    local p = assert(io.popen(SH .. "lua5.4 scripts/gen_cancel_tables.lua 2>&1"))
    local out = p:read("a")
    local ok = p:close()
    assert(ok, out)
  end)

  it("list every op that waits", function()
    local tabled = {}
    for _, guide in ipairs({ "docs/sync.md", "docs/io.md", "docs/cancellation.md",
                             "docs/structured.md", "docs/signals.md", "docs/http.md",
                             "docs/openresty.md" }) do
      local text = read(guide)
      for list in (text or ""):gmatch("<!%-%- cancel%-safety[^:]*: ([^\n]-) %-%->") do
        for name in list:gmatch("%S+") do tabled[name] = true end
      end
    end
    local missing = {}
    local p = assert(io.popen(SH .. "sh -c 'cat docs/api/src/*.lua'"))
    local block = {}
    for line in p:lines() do
      local name = line:match("^function%s+([%w_%.:]+)%s*%(")
      if name then
        local doc = table.concat(block, "\n")
        if doc:find("This is an await", 1, true) and not tabled[name] then
          missing[#missing + 1] = name
        end
        block = {}
      elseif line:match("^%-%-") then
        if line:match("^%-%-%-") then block = {} end
        block[#block + 1] = line
      else
        block = {}
      end
    end
    p:close()
    table.sort(missing)
    assert(#missing == 0, "ops that wait but are in no guide's cancel-safety table: "
      .. table.concat(missing, ", "))
  end)
end)
