-- Turn the results file written by bench/run.sh into two tables: each
-- workload's value per peer (median over runs), and quench's ratio to each
-- peer (quench / peer).
--   lua5.4 bench/report.lua results.txt
-- Result lines: run=K peer=P workload=Wn value=V unit=U check=C [k=v ...]
-- (run.sh appends peak_rss_kb=, proc_wall=, user_s=, sys_s= and rc=).

local ROWS = {   -- { label, workload, field, better, unit shown }
  { "W1 spawn+join", "W1", "value", "higher", "tasks/s" },
  { "W2 ping-pong", "W2", "value", "higher", "round trips/s" },
  { "W3 timers, wall", "W3", "value", "lower", "ms" },
  { "W3 peak RSS", "W3", "peak_rss_kb", "lower", "MB" },
  { "W4 abort -> cleaned", "W4", "value", "lower", "ms" },
  { "W5 timeout(recv)", "W5", "value", "higher", "ops/s" },
  { "W6 TCP echo", "W6", "value", "higher", "round trips/s" },
  { "W7 idle on recv", "W7", "value", "lower", "B/task (RSS)" },
  { "W7s idle in sleep", "W7s", "value", "lower", "B/task (RSS)" },
  { "W7s Lua heap", "W7s", "lua_heap_bytes_per_task", "lower", "B/task (heap)" },
}
local US = "quench"

local path = arg[1] or error("usage: lua5.4 bench/report.lua results.txt")
local cells, peers, seen, nruns = {}, {}, {}, 0
for line in io.lines(path) do
  if not line:match("^#") and line:match("peer=") then
    local t = {}
    for k, v in line:gmatch("([%w_]+)=(%S+)") do t[k] = v end
    local key = t.peer .. "/" .. t.workload
    if not seen[t.peer] then
      seen[t.peer] = true
      peers[#peers + 1] = t.peer
    end
    cells[key] = cells[key] or {}
    table.insert(cells[key], t)
    nruns = math.max(nruns, tonumber(t.run) or 1)
  end
end
do   -- quench first, the others in the order they appear
  local others = {}
  for _, p in ipairs(peers) do if p ~= US then others[#others + 1] = p end end
  peers = seen[US] and { US } or {}
  for _, p in ipairs(others) do peers[#peers + 1] = p end
end

local function median(xs)
  if #xs == 0 then return nil end
  table.sort(xs)
  local m = #xs // 2
  if #xs % 2 == 1 then return xs[m + 1] end
  return (xs[m] + xs[m + 1]) / 2
end

-- The median of field over the ok runs, or nil and why there is none.
local function value(peer, row)
  local runs = cells[peer .. "/" .. row[2]]
  if not runs then return nil, "-" end
  local xs, status = {}, nil
  for _, t in ipairs(runs) do
    if t.check == "ok" then
      local v = tonumber(t[row[3]])
      if v and row[3] == "peak_rss_kb" then v = v / 1024 end
      if v then xs[#xs + 1] = v end
    else
      status = status or t.check
    end
  end
  local m = median(xs)
  if m then return m end
  return nil, status or "-"
end

local function human(x, unit)
  if unit == "ms" then return string.format(x < 10 and "%.1f ms" or "%.0f ms", x) end
  if unit == "MB" then return string.format("%.0f MB", x) end
  if unit:match("^B/") then return string.format("%.0f B", x) end
  if x >= 1e6 then return string.format("%.2f M/s", x / 1e6) end
  if x >= 1e3 then return string.format("%.1f k/s", x / 1e3) end
  return string.format("%.0f /s", x)
end

local function print_table(rows)
  local w = {}
  for _, r in ipairs(rows) do
    for i, c in ipairs(r) do w[i] = math.max(w[i] or 3, #c) end
  end
  for n, r in ipairs(rows) do
    local out = {}
    for i, c in ipairs(r) do
      local pad = string.rep(" ", w[i] - #c)
      out[i] = i <= 2 and c .. pad or pad .. c
    end
    print("| " .. table.concat(out, " | ") .. " |")
    if n == 1 then
      local sep = {}
      for i = 1, #r do
        sep[i] = i <= 2 and string.rep("-", w[i] + 2) or string.rep("-", w[i] + 1) .. ":"
      end
      print("|" .. table.concat(sep, "|") .. "|")
    end
  end
end

print(string.format("Median of %d run(s). Rates: higher is better; ms, MB and bytes: lower is better.",
  nruns))
print()
local t1 = { { "workload", "better" } }
for _, p in ipairs(peers) do table.insert(t1[1], p) end
for _, row in ipairs(ROWS) do
  local r = { row[1], row[4] }
  local any = false
  for _, p in ipairs(peers) do
    local v, why = value(p, row)
    if v then any = true end
    r[#r + 1] = v and human(v, row[5]) or why
  end
  if any then t1[#t1 + 1] = r end
end
print_table(t1)

if seen[US] and #peers > 1 then
  print()
  print("quench / peer (for \"higher\" rows > 1 means quench is ahead; for \"lower\" rows < 1 does):")
  print()
  local t2 = { { "workload", "better" } }
  for i = 2, #peers do table.insert(t2[1], "q/" .. peers[i]) end
  for _, row in ipairs(ROWS) do
    local q = value(US, row)
    if q then
      local r = { row[1], row[4] }
      local any = false
      for i = 2, #peers do
        local v = value(peers[i], row)
        if v and v ~= 0 then
          any = true
          r[#r + 1] = string.format("%.2f", q / v)
        else
          r[#r + 1] = "-"
        end
      end
      if any then t2[#t2 + 1] = r end
    end
  end
  print_table(t2)
end

-- CPU time of each whole process (setup and teardown included), user +
-- system: which side of the system call boundary a peer's time is spent on.
local function cpu(peer, w)
  local us, ss = {}, {}
  for _, t in ipairs(cells[peer .. "/" .. w] or {}) do
    local u, s = tonumber(t.user_s), tonumber(t.sys_s)
    if t.check == "ok" and u and s then
      us[#us + 1] = u
      ss[#ss + 1] = s
    end
  end
  local u, s = median(us), median(ss)
  return u and string.format("%.2f + %.2f", u, s) or "-"
end

local t3 = { { "workload", "cpu s" } }
for _, p in ipairs(peers) do table.insert(t3[1], p) end
for _, w in ipairs({ "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W7s" }) do
  local r, any = { w, "user + sys" }, false
  for _, p in ipairs(peers) do
    r[#r + 1] = cpu(p, w)
    if r[#r] ~= "-" then any = true end
  end
  if any then t3[#t3 + 1] = r end
end
if #t3 > 1 then
  print()
  print("CPU seconds per process, user + system (median; the whole process, setup included):")
  print()
  print_table(t3)
end
