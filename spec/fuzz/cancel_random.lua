-- Randomized cancellation programs, deterministic for a seed.
--
-- A seed gives a program: a tree of statements (spawn, sleep, yield, select,
-- timeout, join, abort, cancel, stop, shield, pcall, raise, token trees,
-- scopes, channel send/recv, mutex and semaphore, <close>/guard/defer
-- cleanups, gc). An interpreter runs it in quench.run on the virtual clock
-- with the same seed, so a run is reproducible. While it runs and after
-- quench.run returns, it checks the contract:
--   * every cleanup that was armed ran exactly once, all of a task's
--     cleanups ran before abort returned (S3), before a select/timeout/t:run
--     returned for its dropped branches (S7, S8), before its join returned;
--     a task's defers run last first, and after its <close> variables;
--   * no task is alive when main ends (quench.stats, quench.tasks), and the
--     stats counters agree with what the joins said;
--   * a value whose send returned true is received exactly once (or is still
--     queued), a value whose send did not is never received;
--   * no lock or permit is leaked; a mutex is never held twice, a semaphore
--     never beyond its permits;
--   * a join says true iff the task ran to its end (true, "end", id); a
--     Cancelled carries the first reason given to that task;
--   * sleep and timeout never end early, a timeout's branch never wins after
--     its deadline;
--   * every error is one the program raised (or Cancelled, or the error of a
--     task whose thread the program closed): anything else (an internal
--     error, "cannot wait in drop-time cleanup", ...) is a bug;
--   * plain Lua on a task's thread (coroutine.running() kept by the task):
--     a coroutine.resume of it never succeeds (a waiting task is resumed by
--     quench only), a coroutine.close of a waiting task ends that task.
--
-- As a script (from the repository root):
--   SEED=1234 lua5.4 spec/fuzz/cancel_random.lua          one program
--   SEED=1 COUNT=100000 lua5.4 spec/fuzz/cancel_random.lua  a long run
--   SEED=1234 DUMP=1 ...      also print the program
--   SEED=1234 SHRINK=1 ...    shrink a failing program and print it
--   QUENCH_CPATH='/tmp/rel/build/?.so' picks the quench.so (default ./build)
-- As a module: require("fuzz.cancel_random").run(seed) -> violations, info
local M = {}

-- Known bugs the generator can steer around, so that a run looks for new
-- ones (docs/how-quench-is-tested.md lists them). None is open: bug 1 (a raising
-- <close> in a select branch) is fixed, so the generator walks into it.
M.avoid = { branch_cleanup_error = false }

local quench

local function load_quench()
  if quench then return quench end
  quench = require "quench"
  return quench
end

local pack, unpack = table.pack, table.unpack

---------------------------------------------------------------------------
-- Deterministic generator (xorshift64), independent of math.random
---------------------------------------------------------------------------

local function new_rng(seed)
  local x = (seed * 0x9E3779B97F4A7C15) ~ 0x5DEECE66D
  if x == 0 then x = 1 end
  local r = {}
  function r.next()
    x = x ~ (x << 13); x = x ~ (x >> 7); x = x ~ (x << 17)
    return x
  end
  function r.int(a, b)
    if b == nil then a, b = 1, a end
    return a + (r.next() >> 1) % (b - a + 1)
  end
  function r.chance(p) return ((r.next() >> 11) / 9007199254740992.0) < p end
  return r
end

---------------------------------------------------------------------------
-- Generation: a program is plain data, so it can be printed and shrunk
---------------------------------------------------------------------------

local function weighted(r, choices)
  local total = 0
  for i = 1, #choices, 2 do total = total + choices[i + 1] end
  local k = r.int(1, total)
  for i = 1, #choices, 2 do
    k = k - choices[i + 1]
    if k <= 0 then return choices[i] end
  end
end

local function duration(r)
  local k = r.int(1, 10)
  if k <= 2 then return 0 end
  if k <= 8 then return r.int(1, 5) end          -- whole seconds: ties are common
  return r.int(1, 40) / 8
end

-- g: {r, P, left (statement budget), task (id of the task whose code this
-- is), scope (sid of the scope body this block is in, or nil), depth}
local gen_block

local function pick_target(g, lower_only)
  local hi = g.P.ntasks
  if lower_only then hi = math.min(hi, g.task - 1) end
  if g.task == 0 and lower_only then hi = g.P.ntasks end
  if hi < 1 then return nil end
  local id = g.r.int(1, hi)
  if id == g.task then return nil end
  return id
end

local function new_task(g)
  g.P.ntasks = g.P.ntasks + 1
  return g.P.ntasks
end

local function sub(g, fields)
  local h = { r = g.r, P = g.P, task = g.task, scope = g.scope, depth = g.depth + 1 }
  for k, v in pairs(fields or {}) do h[k] = v end
  return h
end

local function gen_branch(g)
  local r, P = g.r, g.P
  local kind = weighted(r, { "fn", 6, "sleep", 3, "recv", #P.chans > 0 and 2 or 0,
    "send", #P.chans > 0 and 2 or 0, "lock", P.mutexes > 0 and 1 or 0,
    "acquire", #P.sems > 0 and 1 or 0, "join", P.ntasks > 0 and 1 or 0,
    "token", P.ntokens > 0 and 1 or 0 })
  if kind == "fn" then return { kind = "fn", body = gen_block(sub(g), 3) } end
  if kind == "sleep" then return { kind = "sleep", d = duration(r) } end
  if kind == "recv" or kind == "send" then return { kind = kind, ch = r.int(1, #P.chans) } end
  if kind == "lock" then return { kind = "lock", m = r.int(1, P.mutexes) } end
  if kind == "acquire" then
    local s = r.int(1, #P.sems)
    return { kind = "acquire", s = s, k = r.int(1, P.sems[s]) }
  end
  if kind == "join" then
    local id = pick_target(g, true)
    if id then return { kind = "join", id = id } end
    return { kind = "sleep", d = duration(r) }
  end
  return { kind = "token", k = r.int(1, P.ntokens) }
end

local function maybe_timeout(g)
  if g.r.chance(g.task == 0 and 0.9 or 0.4) then return duration(g.r) end
end

local function gen_stmt(g)
  local r, P = g.r, g.P
  local deep = g.depth >= 4
  local has_ch, has_m, has_s, has_t = #P.chans > 0, P.mutexes > 0, #P.sems > 0, P.ntokens > 0
  local op = weighted(r, {
    "sleep", 10, "yield", 4, "spawn", deep and 0 or 14, "join", 6, "abort", 5, "cancel", 5,
    "stop", 2, "closer", 9, "shield", deep and 0 or 2, "pcall", deep and 0 or 3,
    "raise", g.task == 0 and 0 or 2, "select", deep and 0 or 6, "timeout", deep and 0 or 5,
    "send", has_ch and 5 or 0, "recv", has_ch and 5 or 0, "try_send", has_ch and 2 or 0,
    "try_recv", has_ch and 2 or 0, "close_ch", has_ch and 1 or 0,
    "lock", (has_m and not deep) and 3 or 0, "acquire", (has_s and not deep) and 2 or 0,
    "token_cancel", has_t and 3 or 0, "token_spawn", (has_t and not deep) and 3 or 0,
    "token_run", (has_t and not deep) and 2 or 0, "token_wait", has_t and 2 or 0,
    "token_guard", has_t and 1 or 0, "scope", deep and 0 or 3,
    "scope_spawn", (g.scope and not deep) and 4 or 0, "scope_cancel", g.scope and 1 or 0,
    "self_abort", g.task == 0 and 0 or 1, "self_cancel", g.task == 0 and 0 or 1,
    "gc", 1, "ready_loop", 2, "dup_op", 1, "resume_thread", 2,
    "close_thread", P.ntasks > 0 and 1 or 0,
  })
  if op == "sleep" then return { op = op, d = duration(r) } end
  if op == "yield" or op == "raise" or op == "self_abort" or op == "self_cancel" then
    return { op = op }
  end
  if op == "gc" then return { op = op, full = r.chance(0.3) } end
  if op == "ready_loop" then   -- more awaits than the cooperative budget, all ready at once
    return { op = op, n = r.int(100, 400), kind = weighted(r, { "chan", 3, "sema", 1, "select", 1 }) }
  end
  if op == "dup_op" then return { op = op, biased = r.chance(0.5) } end
  if op == "resume_thread" then return { op = op, id = r.int(0, P.ntasks) } end
  if op == "close_thread" then
    local id = pick_target(g, false)
    if not id then return { op = "yield" } end
    return { op = op, id = id }
  end
  if op == "spawn" or op == "token_spawn" or op == "scope_spawn" then
    local id = new_task(g)
    local st = { op = op, id = id, close = op == "spawn" and r.chance(0.3),
      detach = r.chance(0.1) }
    if op == "token_spawn" then st.k = r.int(1, P.ntokens) end
    if op == "scope_spawn" then st.sid = g.scope end
    st.body = gen_block(sub(g, { task = id, scope = false, depth = g.depth + 1 }), 5, true)
    return st
  end
  if op == "join" then
    local id = pick_target(g, true)
    if not id then return { op = "yield" } end
    return { op = op, id = id, t = maybe_timeout(g) }
  end
  if op == "abort" or op == "cancel" then
    local id = pick_target(g, false)
    if not id then return { op = "yield" } end
    return { op = op, id = id, reason = r.chance(0.7) }
  end
  if op == "stop" then
    local id = pick_target(g, true)
    if not id then return { op = "yield" } end
    return { op = op, id = id, grace = duration(r), reason = r.chance(0.7) }
  end
  if op == "closer" then
    local kind = weighted(r, { "close", 6, "guard", 3, "defer", 4, "raise_close", 1,
      "raise_defer", g.task == 0 and 0 or 1, "abort_close", P.ntasks > 0 and 1 or 0,
      "cancel_close", P.ntasks > 0 and 1 or 0 })
    local st = { op = op, kind = kind }
    if kind == "abort_close" or kind == "cancel_close" then
      st.target = pick_target(g, false)
      if not st.target then st.kind = "close" end
    end
    return st
  end
  if op == "shield" or op == "pcall" then return { op = op, body = gen_block(sub(g), 4) } end
  if op == "select" then
    local st = { op = op, biased = r.chance(0.3), branches = {} }
    for i = 1, r.int(1, 4) do st.branches[i] = gen_branch(sub(g)) end
    return st
  end
  if op == "timeout" then
    local st = { op = op, d = duration(r) }
    if r.chance(0.25) then st.branch = gen_branch(sub(g)) else st.body = gen_block(sub(g), 4) end
    return st
  end
  if op == "send" or op == "recv" then
    return { op = op, ch = r.int(1, #P.chans), t = maybe_timeout(g), as_op = r.chance(0.3) }
  end
  if op == "try_send" or op == "try_recv" or op == "close_ch" then
    return { op = op, ch = r.int(1, #P.chans) }
  end
  if op == "lock" then
    return { op = op, m = r.int(1, P.mutexes), t = maybe_timeout(g), body = gen_block(sub(g), 3) }
  end
  if op == "acquire" then
    local s = r.int(1, #P.sems)
    return { op = op, s = s, k = r.int(1, P.sems[s]), t = maybe_timeout(g),
      body = gen_block(sub(g), 3) }
  end
  if op == "token_cancel" or op == "token_guard" then
    return { op = op, k = r.int(1, P.ntokens), reason = r.chance(0.7) }
  end
  if op == "token_run" then
    return { op = op, k = r.int(1, P.ntokens), body = gen_block(sub(g), 3) }
  end
  if op == "token_wait" then
    return { op = op, k = r.int(1, P.ntokens), t = maybe_timeout(g) }
  end
  if op == "scope" then
    P.nscopes = P.nscopes + 1
    local sid = P.nscopes
    return { op = op, sid = sid, grace = duration(r),
      body = gen_block(sub(g, { scope = sid }), 5) }
  end
  if op == "scope_cancel" then return { op = op, sid = g.scope, reason = r.chance(0.7) } end
  error("unknown op " .. tostring(op))
end

function gen_block(g, max, is_task_body)
  local r = g.r
  local b = {}
  local n = r.int(is_task_body and math.max(1, max // 2) or 0, max)
  for _ = 1, n do
    if g.P.left <= 0 then break end
    g.P.left = g.P.left - 1
    b[#b + 1] = gen_stmt(g)
  end
  return b
end

--- M.generate(seed): the program of a seed (plain data).
function M.generate(seed)
  local r = new_rng(seed)
  local P = { seed = seed, chans = {}, mutexes = r.int(0, 2), sems = {}, ntokens = r.int(0, 4),
    token_parent = {}, ntasks = 0, nscopes = 0, left = r.int(8, 90) }
  for i = 1, r.int(0, 3) do P.chans[i] = r.chance(0.3) and 0 or r.int(1, 3) end   -- 0: unbounded
  for i = 1, r.int(0, 2) do P.sems[i] = r.int(1, 3) end
  for k = 2, P.ntokens do
    if r.chance(0.7) then P.token_parent[k] = r.int(1, k - 1) end
  end
  P.drain = r.chance(0.8)
  P.main = gen_block({ r = r, P = P, task = 0, scope = nil, depth = 0 }, 14, true)
  return P
end

---------------------------------------------------------------------------
-- Printing
---------------------------------------------------------------------------

local function fmt_branch(b)
  if b.kind == "fn" then return nil end
  local s = b.kind
  if b.d then s = s .. " " .. b.d end
  if b.ch then s = s .. " ch" .. b.ch end
  if b.m then s = s .. " m" .. b.m end
  if b.s then s = s .. " s" .. b.s .. " k=" .. b.k end
  if b.id then s = s .. " task" .. b.id end
  if b.k and not b.s then s = s .. " token" .. b.k end
  return s .. "_op"
end

local function dump_block(out, b, ind)
  for _, st in ipairs(b) do
    local parts = { st.op }
    for _, key in ipairs({ "id", "kind", "d", "t", "ch", "m", "s", "k", "sid", "grace",
                           "target", "reason", "close", "detach", "biased", "as_op", "full",
                           "n" }) do
      if st[key] ~= nil and st[key] ~= false then parts[#parts + 1] = key .. "=" .. tostring(st[key]) end
    end
    out[#out + 1] = ind .. table.concat(parts, " ")
    if st.body then dump_block(out, st.body, ind .. "  ") end
    if st.branch then
      local s = fmt_branch(st.branch)
      if s then out[#out + 1] = ind .. "  branch " .. s
      else out[#out + 1] = ind .. "  branch fn:"; dump_block(out, st.branch.body, ind .. "    ") end
    end
    for i, br in ipairs(st.branches or {}) do
      local s = fmt_branch(br)
      if s then out[#out + 1] = ind .. "  [" .. i .. "] " .. s
      else out[#out + 1] = ind .. "  [" .. i .. "] fn:"; dump_block(out, br.body, ind .. "    ") end
    end
  end
end

--- M.dump(P): the program as indented text.
function M.dump(P)
  local chans = {}
  for i, c in ipairs(P.chans) do chans[i] = c == 0 and "unbounded" or tostring(c) end
  local tokens = {}
  for k = 1, P.ntokens do tokens[k] = P.token_parent[k] and (k .. "<" .. P.token_parent[k]) or tostring(k) end
  local out = { string.format("program seed=%d channels={%s} mutexes=%d sems={%s} tokens={%s} drain=%s",
    P.seed, table.concat(chans, ","), P.mutexes, table.concat(P.sems, ","),
    table.concat(tokens, ","), tostring(P.drain)), "main:" }
  dump_block(out, P.main, "  ")
  return table.concat(out, "\n")
end

---------------------------------------------------------------------------
-- The interpreter
---------------------------------------------------------------------------

local EPS = 1e-6
local NIL = setmetatable({}, { __tostring = function() return "nil" end })

local function violation(R, fmt, ...)
  local msg = string.format(fmt, ...)
  if #R.violations < 50 then R.violations[#R.violations + 1] = msg end
end

local function expected_error(e)
  if quench.is_cancelled(e) then return true end
  if type(e) == "table" and (e.raised or e.cleanup_raise) then return true end
  if type(e) == "table" and e.kind == "multiple" then
    for _, x in ipairs(e.errors) do
      if not expected_error(x) then return false end
    end
    return true
  end
  return false
end

local function show(e)
  if type(e) == "table" and not getmetatable(e) then
    local parts = {}
    for k, v in pairs(e) do parts[#parts + 1] = tostring(k) .. "=" .. tostring(v) end
    table.sort(parts)
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return tostring(e)
end

local CLOSED = "was closed by coroutine.close()"

local function closed_error(e)
  if type(e) == "string" then return e:find(CLOSED, 1, true) ~= nil end
  if type(e) == "table" and e.kind == "multiple" then
    for _, x in ipairs(e.errors) do
      if not expected_error(x) and not closed_error(x) then return false end
    end
    return true
  end
  return false
end

local function check_error(R, where, e)
  if R.closed_any and closed_error(e) then return end
  if not expected_error(e) then violation(R, "%s: unexpected error: %s", where, show(e)) end
end

-- Cleanups --------------------------------------------------------------

local function record(R, name)
  R.ran[name] = (R.ran[name] or 0) + 1
  R.seq = R.seq + 1
  R.ran_at[name] = R.seq
  if R.ran[name] > 1 then violation(R, "cleanup %d (%s of task %d) ran %d times",
    name, R.cleanup_kind[name], R.cleanup_task[name], R.ran[name]) end
end

local function arm(R, cx, kind)
  R.nclean = R.nclean + 1
  local name = R.nclean
  R.cleanup_task[name] = cx.task
  R.cleanup_kind[name] = kind
  local list = R.armed_by[cx.task]
  if not list then list = {}; R.armed_by[cx.task] = list end
  list[#list + 1] = name
  if kind ~= "defer" and kind ~= "raise_defer" then
    for _, bc in ipairs(cx.branches) do bc[#bc + 1] = name end
  end
  return name
end

local function check_cleanups_ran(R, id, when)
  for _, name in ipairs(R.armed_by[id] or {}) do
    if R.ran[name] ~= 1 then
      violation(R, "%s: cleanup %d (%s) of task %d ran %d times", when, name,
        R.cleanup_kind[name], id, R.ran[name] or 0)
    end
  end
end

local function check_branch_cleanups(R, bc, when)
  for _, name in ipairs(bc) do
    if R.ran[name] ~= 1 then
      violation(R, "%s: cleanup %d (%s) of a dropped branch ran %d times", when, name,
        R.cleanup_kind[name], R.ran[name] or 0)
    end
  end
end

local Closer = {}
Closer.__index = Closer
Closer.__close = function(self)
  local R = self.R
  record(R, self.name)
  if self.kind == "raise_close" then error({ cleanup_raise = self.name }, 0) end
  if self.kind == "abort_close" then R.do_abort(R, self.cx, self.target, nil, true) end
  if self.kind == "cancel_close" then R.do_cancel(R, self.cx, self.target, nil) end
end

-- Tasks and reasons ------------------------------------------------------

local function note_reason(R, id, reason)
  local h = R.handles[id]
  if h == nil or h:done() or R.first_reason[id] ~= nil then return end
  R.first_reason[id] = reason == nil and NIL or reason
end

local function new_reason(R, id, given)
  if not given then return nil end
  R.nreason = R.nreason + 1
  return { reason = R.nreason, target = id }
end

local function check_join(R, id, where, r)
  R.join_checks = R.join_checks + 1
  local ok = r[1]
  check_cleanups_ran(R, id, where .. " of task " .. id)
  if ok then
    if not R.reached_end[id] then
      violation(R, "%s: task %d joined true but never reached its end", where, id)
    end
    if R.raise_defer[id] then
      violation(R, "%s: task %d joined true though a defer raised", where, id)
    end
    if r.n ~= 3 or r[2] ~= "end" or r[3] ~= id then
      violation(R, "%s: task %d joined true with wrong results (%d values: %s, %s)",
        where, id, r.n, tostring(r[2]), tostring(r[3]))
    end
  else
    local e = r[2]
    if R.reached_end[id] and not R.raise_defer[id] then
      violation(R, "%s: task %d reached its end but joined false: %s", where, id, show(e))
    end
    check_error(R, where .. " of task " .. id, e)
    if quench.is_cancelled(e) and type(e.reason) == "table" and e.reason.target == id
        and not R.no_reason_check[id] and R.first_reason[id] ~= e.reason then
      violation(R, "%s: task %d cancelled with reason #%s, but the first reason given was %s",
        where, id, tostring(e.reason.reason),
        type(R.first_reason[id]) == "table" and ("#" .. R.first_reason[id].reason)
          or tostring(R.first_reason[id]))
    end
  end
end

local exec_block

local function task_body(R, id, body)
  R.started[id] = true
  R.threads[id] = coroutine.running()
  exec_block(R, body, 1, { task = id, branches = {} })
  R.reached_end[id] = true
  return "end", id
end

local function do_abort(R, cx, id, reason, from_cleanup)
  local h = R.handles[id]
  if h == nil then return end
  local before = h:state()
  note_reason(R, id, reason)
  h:abort(reason)
  if id ~= cx.task and (before == "pending" or before == "suspended") then
    if not h:done() then
      violation(R, "abort of %s task %d returned but the task is %s", before, id, h:state())
    end
    check_cleanups_ran(R, id, (from_cleanup and "abort from a cleanup" or "abort") ..
      " of " .. before .. " task " .. id)
  end
end

local function do_cancel(R, cx, id, reason)
  local h = R.handles[id]
  if h == nil then return end
  local before = h:state()
  note_reason(R, id, reason)
  h:cancel(reason)
  if before ~= "done" and h:done() and id ~= cx.task then
    violation(R, "cancel of %s task %d finished it before returning", before, id)
  end
end

-- Tokens: the interpreter mirrors the tree to know which tasks a cancel
-- reaches and with which reason.
local function token_cancelled_by(R, k, reason)
  local stack = { k }
  while #stack > 0 do
    local t = table.remove(stack)
    if not R.tok_cancelled[t] then
      R.tok_cancelled[t] = true
      R.tok_reason[t] = reason
      for _, id in ipairs(R.bound[t] or {}) do note_reason(R, id, reason) end
      for c = 1, R.P.ntokens do
        if R.P.token_parent[c] == t then stack[#stack + 1] = c end
      end
    end
  end
end

local function do_token_cancel(R, k, reason)
  local first = R.tokens[k]:cancel(reason)
  if first ~= not R.tok_cancelled[k] then
    violation(R, "token %d: cancel returned %s, expected %s", k, tostring(first),
      tostring(not R.tok_cancelled[k]))
  end
  if first then token_cancelled_by(R, k, reason) end
end

-- Channels and locks -----------------------------------------------------

local function new_value(R, ch)
  R.nvalues = R.nvalues + 1
  R.value_ch[R.nvalues] = ch
  return R.nvalues
end

local function got_value(R, ch, v, where)
  if type(v) ~= "number" or R.value_ch[v] ~= ch then
    violation(R, "%s on channel %d returned %s, which was never sent on it", where, ch, show(v))
    return
  end
  R.recvd[v] = (R.recvd[v] or 0) + 1
  if not R.sent[v] then R.recv_unsent[#R.recv_unsent + 1] = v end
end

local function hold(R, key, k, limit)
  R.holders[key] = (R.holders[key] or 0) + k
  if R.holders[key] > limit then
    violation(R, "%s held %d times (limit %d)", key, R.holders[key], limit)
  end
  return setmetatable({}, { __close = function() R.holders[key] = R.holders[key] - k end })
end

-- Statements -------------------------------------------------------------

local function with_timeout(t, fn, ...)
  if t then return quench.timeout(t, fn, ...) end
  return true, fn(...)
end

local function await_op(t, op)
  if t then return quench.timeout(t, op) end
  return true, op:await()
end

local function sub_cx(cx, bc)
  if not bc then return { task = cx.task, branches = cx.branches, scope = cx.scope } end
  local branches = { bc }
  for i, b in ipairs(cx.branches) do branches[i + 1] = b end
  return { task = cx.task, branches = branches, scope = cx.scope }
end

local function run_branch(R, cx, bc, body)
  exec_block(R, body, 1, sub_cx(cx, bc))
  return "branch"
end

-- An op for a branch description; `finish(results...)` records a win.
local function make_op(R, _, b)
  if b.kind == "sleep" then return quench.sleep_op(b.d), function() end end
  if b.kind == "recv" then
    local ch = R.chans[b.ch]
    return ch:recv_op(), function(v, e)
      if v ~= nil then got_value(R, b.ch, v, "recv_op")
      elseif e ~= "closed" then violation(R, "recv_op returned nil, %s", tostring(e)) end
    end
  end
  if b.kind == "send" then
    local v = new_value(R, b.ch)
    return R.chans[b.ch]:send_op(v), function(ok, e)
      if ok == true then R.sent[v] = true
      elseif e ~= "closed" then violation(R, "send_op returned %s, %s", tostring(ok), tostring(e)) end
    end
  end
  if b.kind == "lock" then
    return R.mutexes[b.m]:lock_op(), function(p)
      local _h <close> = hold(R, "mutex " .. b.m, 1, 1)
      if not p:held() then violation(R, "lock_op gave a permit not held") end
      p:release()
    end
  end
  if b.kind == "acquire" then
    return R.sems[b.s]:acquire_op(b.k), function(p)
      local _h <close> = hold(R, "semaphore " .. b.s, b.k, R.P.sems[b.s])
      p:release()
    end
  end
  if b.kind == "join" then
    local h = R.handles[b.id]
    if h == nil then return quench.sleep_op(1), function() end end
    return h:join_op(), function(...) check_join(R, b.id, "join_op", pack(...)) end
  end
  if b.kind == "token" then
    return R.tokens[b.k]:cancelled_op(), function(reason)
      if reason ~= R.tok_reason[b.k] then
        violation(R, "token %d cancelled_op gave reason %s", b.k, show(reason))
      end
    end
  end
  error("bad branch " .. tostring(b.kind))
end

local S = {}

function S.sleep(R, _, st)
  local t0 = quench.now()
  quench.sleep(st.d)
  if quench.now() - t0 < st.d - EPS then
    violation(R, "sleep(%g) returned after %g", st.d, quench.now() - t0)
  end
end

function S.yield() quench.yield() end

function S.gc(_, _, st)
  if st.full then collectgarbage() else collectgarbage("step", 10) end
end

function S.raise(_, cx) error({ raised = true, task = cx.task }, 0) end

function S.self_abort(R, cx)
  note_reason(R, cx.task, nil)
  quench.current():abort()
end

function S.self_cancel(R, cx)
  local reason = new_reason(R, cx.task, true)
  note_reason(R, cx.task, reason)
  quench.current():cancel(reason)
end

function S.join(R, _, st)
  local h = R.handles[st.id]
  if h == nil then return end
  local r = pack(with_timeout(st.t, function()
    local res = pack(h:join())
    check_join(R, st.id, "join", res)
  end))
  if not r[1] and not quench.is_timeout(r[2]) then violation(R, "join timeout: %s", show(r[2])) end
end

function S.abort(R, cx, st) do_abort(R, cx, st.id, new_reason(R, st.id, st.reason)) end
function S.cancel(R, cx, st) do_cancel(R, cx, st.id, new_reason(R, st.id, st.reason)) end

function S.stop(R, _, st)
  local h = R.handles[st.id]
  if h == nil then return end
  local reason = new_reason(R, st.id, st.reason)
  note_reason(R, st.id, reason)
  local r = pack(h:stop(st.grace, reason))
  check_join(R, st.id, "stop", r)
end

function S.shield(R, cx, st) return quench.shield(exec_block, R, st.body, 1, sub_cx(cx)) end

function S.pcall(R, cx, st)
  local ok, e = pcall(exec_block, R, st.body, 1, sub_cx(cx))
  if not ok then check_error(R, "pcall", e) end
end

function S.select(R, cx, st)
  local args, finish, bcs = {}, {}, {}
  for i, b in ipairs(st.branches) do
    if b.kind == "fn" then
      local bc = {}
      bcs[i] = bc
      args[i] = function() return run_branch(R, cx, bc, b.body) end
    else
      args[i], finish[i] = make_op(R, cx, b)
    end
  end
  local sel = st.biased and quench.select_biased or quench.select
  local r = pack(sel(unpack(args, 1, #st.branches)))
  local w = r[1]
  if math.type(w) ~= "integer" or w < 1 or w > #st.branches then
    violation(R, "select returned index %s", tostring(w))
    return
  end
  for i = 1, #st.branches do
    if i ~= w and bcs[i] then check_branch_cleanups(R, bcs[i], "select returned " .. w) end
  end
  if finish[w] then finish[w](unpack(r, 2, r.n))
  elseif r[2] ~= "branch" then violation(R, "select branch %d returned %s", w, tostring(r[2])) end
end

function S.timeout(R, cx, st)
  local t0 = quench.now()
  local r, bc, finish
  if st.branch and st.branch.kind ~= "fn" then
    local op
    op, finish = make_op(R, cx, st.branch)
    r = pack(quench.timeout(st.d, op))
  else
    bc = {}
    local body = st.body or st.branch.body
    r = pack(quench.timeout(st.d, run_branch, R, cx, bc, body))
  end
  local dt = quench.now() - t0
  if r[1] == true then
    if dt > st.d + EPS then violation(R, "timeout(%g): the branch won after %g", st.d, dt) end
    if finish then finish(unpack(r, 2, r.n)) end
  else
    if not quench.is_timeout(r[2]) then violation(R, "timeout returned false, %s", show(r[2])) end
    if dt < st.d - EPS then violation(R, "timeout(%g) expired after %g", st.d, dt) end
    if bc then check_branch_cleanups(R, bc, "timeout expired") end
  end
end

function S.send(R, _, st)
  local ch = R.chans[st.ch]
  local v = new_value(R, st.ch)
  local r
  if st.as_op then
    r = pack(with_timeout(st.t, function()
      local ok, e = ch:send_op(v):await()
      if ok then R.sent[v] = true end
      return ok, e
    end))
  else
    r = pack(with_timeout(st.t, function()
      local ok, e = ch:send(v)
      if ok then R.sent[v] = true end
      return ok, e
    end))
  end
  if r[1] and r[2] ~= true and r[3] ~= "closed" then
    violation(R, "send returned %s, %s", tostring(r[2]), tostring(r[3]))
  end
end

function S.recv(R, _, st)
  local ch = R.chans[st.ch]
  local r = pack(with_timeout(st.t, function()
    local v, e
    if st.as_op then v, e = ch:recv_op():await() else v, e = ch:recv() end
    if v ~= nil then got_value(R, st.ch, v, "recv") end
    return v, e
  end))
  if r[1] and r[2] == nil and r[3] ~= "closed" then
    violation(R, "recv returned nil, %s", tostring(r[3]))
  end
end

function S.try_send(R, _, st)
  local v = new_value(R, st.ch)
  local ok, e = R.chans[st.ch]:try_send(v)
  if ok then R.sent[v] = true
  elseif e ~= "full" and e ~= "closed" then violation(R, "try_send: %s, %s", tostring(ok), tostring(e)) end
end

function S.try_recv(R, _, st)
  local v, e = R.chans[st.ch]:try_recv()
  if v ~= nil then got_value(R, st.ch, v, "try_recv")
  elseif e ~= "empty" and e ~= "closed" then violation(R, "try_recv: nil, %s", tostring(e)) end
end

function S.close_ch(R, _, st) R.chans[st.ch]:close() end

-- A streak of awaits that are all ready (on objects of its own): past the
-- cooperative budget one of them suspends once, wherever the program is;
-- values still come back in order and nothing is left behind.
function S.ready_loop(R, _, st)
  if st.kind == "sema" then
    local sem = quench.semaphore(1)
    for _ = 1, st.n do
      local _p <close> = sem:acquire()
      if sem:available() ~= 0 then violation(R, "ready_loop: a permit held twice") end
    end
    return
  end
  local ch = quench.channel(st.kind == "select" and 2 or nil)
  if st.kind ~= "select" then ch:send(0) end   -- one value ahead: a lost one shows as a wrong one
  for i = 1, st.n do
    if st.kind == "select" then
      ch:send(i)
      ch:send(-i)
      local _, v = quench.select(ch:recv_op(), ch:recv_op())
      if v ~= i or ch:try_recv() ~= -i then
        violation(R, "ready_loop: select broke the channel's order")
      end
    else
      ch:send(i)
      local v = ch:recv()
      if v ~= i - 1 then violation(R, "ready_loop: expected %d, received %s", i - 1, tostring(v)) end
    end
  end
  if st.kind ~= "select" and ch:try_recv() ~= st.n then
    violation(R, "ready_loop: the last value was lost")
  end
end

-- The same op twice in one select: refused before anything starts.
function S.dup_op(R, _, st)
  local ch = quench.channel()
  ch:send("kept")
  local op = ch:recv_op()
  local sel = st.biased and quench.select_biased or quench.select
  local ok, e = pcall(sel, op, op)
  if ok then violation(R, "dup_op: select accepted the same op twice") return end
  if quench.is_cancelled(e) then error(e, 0) end
  if not tostring(e):find("the same op as argument #1", 1, true) then
    violation(R, "dup_op: select raised %s", show(e))
  end
  if ch:try_recv() ~= "kept" then violation(R, "dup_op: the refused select took the value") end
end

function S.lock(R, cx, st)
  local m = R.mutexes[st.m]
  local r = pack(await_op(st.t, m:lock_op()))
  if not r[1] then return end
  local p <close> = r[2]
  if not p:held() then violation(R, "lock gave a permit not held") end
  local _h <close> = hold(R, "mutex " .. st.m, 1, 1)
  exec_block(R, st.body, 1, sub_cx(cx))
end

function S.acquire(R, cx, st)
  local s = R.sems[st.s]
  local r = pack(await_op(st.t, s:acquire_op(st.k)))
  if not r[1] then return end
  local _p <close> = r[2]
  local _h <close> = hold(R, "semaphore " .. st.s, st.k, R.P.sems[st.s])
  exec_block(R, st.body, 1, sub_cx(cx))
end

function S.token_cancel(R, _, st) do_token_cancel(R, st.k, st.reason and { token = st.k } or nil) end

function S.token_run(R, cx, st)
  local bc = {}
  local r = pack(R.tokens[st.k]:run(run_branch, R, cx, bc, st.body))
  if r[1] then
    if r[2] ~= "branch" then violation(R, "t:run returned true, %s", tostring(r[2])) end
  else
    if not quench.is_cancelled(r[2]) then violation(R, "t:run returned false, %s", show(r[2])) end
    if not R.tok_cancelled[st.k] then violation(R, "t:run returned false on a token not cancelled") end
    check_branch_cleanups(R, bc, "t:run returned false")
  end
end

function S.token_wait(R, _, st)
  local tok = R.tokens[st.k]
  local r = pack(with_timeout(st.t, tok.cancelled, tok))
  if r[1] then
    if not R.tok_cancelled[st.k] then violation(R, "t:cancelled returned on a token not cancelled") end
    if r[2] ~= R.tok_reason[st.k] then violation(R, "t:cancelled gave reason %s", show(r[2])) end
  end
end

-- Spawning statements continue the block inside the handle's <close> scope.
local function spawn_stmt(R, cx, st, b, i)
  if R.handles[st.id] then return exec_block(R, b, i + 1, cx) end   -- ran once already
  local h
  if st.op == "token_spawn" then
    h = R.tokens[st.k]:spawn(task_body, R, st.id, st.body)
    local list = R.bound[st.k] or {}
    R.bound[st.k] = list
    list[#list + 1] = st.id
  elseif st.op == "scope_spawn" then
    local scope = R.scopes[st.sid]
    if scope == nil then return exec_block(R, b, i + 1, cx) end
    h = scope:spawn(task_body, R, st.id, st.body)
    R.no_reason_check[st.id] = true
  else
    h = quench.spawn(task_body, R, st.id, st.body)
  end
  R.handles[st.id] = h
  R.nhandles = R.nhandles + 1
  if st.op == "token_spawn" and R.tok_cancelled[st.k] then note_reason(R, st.id, R.tok_reason[st.k]) end
  if st.detach then h:detach() end
  if st.close then
    R.no_reason_check[st.id] = true
    local _h <close> = h
    return exec_block(R, b, i + 1, cx)
  end
  return exec_block(R, b, i + 1, cx)
end

local function closer_stmt(R, cx, st, b, i)
  local kind = st.kind
  if kind == "raise_close" and #cx.branches > 0 and M.avoid.branch_cleanup_error then
    kind = "close"   -- known bug 1 (docs/how-quench-is-tested.md): select loses its winner's result
  end
  local name = arm(R, cx, kind)
  if st.kind == "defer" or st.kind == "raise_defer" then
    if st.kind == "raise_defer" then R.raise_defer[cx.task] = true end
    quench.defer(function()
      R.defer_log[#R.defer_log + 1] = name
      record(R, name)
      if st.kind == "raise_defer" then error({ cleanup_raise = name }, 0) end
    end)
    return exec_block(R, b, i + 1, cx)
  end
  if st.kind == "guard" then
    local _g <close> = quench.guard(function() record(R, name) end)
    return exec_block(R, b, i + 1, cx)
  end
  local _c <close> = setmetatable({ R = R, name = name, kind = kind, cx = cx, target = st.target }, Closer)
  return exec_block(R, b, i + 1, cx)
end

local function token_guard_stmt(R, cx, st, b, i)
  local _g <close> = R.tokens[st.k]:guard()
  local _note <close> = setmetatable({}, { __close = function()   -- runs just before the guard
    if not R.tok_cancelled[st.k] then token_cancelled_by(R, st.k, nil) end
  end })
  return exec_block(R, b, i + 1, cx)
end

-- Plain Lua on a task's thread. A resume never succeeds: a waiting thread
-- is quench's (refused: an error in the resumer), a running or normal one
-- Lua's, a finished task's thread belongs to the pool.
function S.resume_thread(R, _, st)
  local co = R.threads[st.id]
  if co == nil then return end
  local pok, rok, err = pcall(coroutine.resume, co, "from Lua")
  if not pok then R.refused = R.refused + 1 end
  if pok and rok then
    violation(R, "coroutine.resume of task %d's thread succeeded (%s)", st.id, show(err))
  elseif type(pok and err or rok) ~= "string" then
    violation(R, "coroutine.resume of task %d's thread failed with %s", st.id, show(pok and err or rok))
  end
end

-- A close ends a waiting task (its join: false, "...was closed by
-- coroutine.close()..."); its <close> variables run now, its defers later.
function S.close_thread(R, _, st)
  local h, co = R.handles[st.id], R.threads[st.id]
  if h == nil or co == nil or h:done() then return end   -- a done task's thread is not its own
  if coroutine.status(co) == "suspended" then
    R.closed_any = true
    R.nclosed = R.nclosed + 1
  end
  pcall(coroutine.close, co)
end

local function scope_stmt(R, cx, st)
  local cx2 = sub_cx(cx)
  local opts = { grace = st.grace }
  quench.scope(opts, function(s)
    R.scopes[st.sid] = s
    exec_block(R, st.body, 1, cx2)
  end)
end

function S.scope_cancel(R, _, st)
  local s = R.scopes[st.sid]
  if s then s:cancel(st.reason and { scope = st.sid } or nil) end
end

function exec_block(R, b, i, cx)
  while i <= #b do
    local st = b[i]
    local op = st.op
    if op == "spawn" or op == "token_spawn" or op == "scope_spawn" then
      return spawn_stmt(R, cx, st, b, i)
    elseif op == "closer" then
      return closer_stmt(R, cx, st, b, i)
    elseif op == "token_guard" then
      return token_guard_stmt(R, cx, st, b, i)
    elseif op == "scope" then
      scope_stmt(R, cx, st)
    else
      S[op](R, cx, st)
    end
    i = i + 1
  end
end

---------------------------------------------------------------------------
-- Running one program and checking what is left
---------------------------------------------------------------------------

local function new_state(P)
  return {
    P = P, violations = {}, handles = {}, nhandles = 0, started = {}, reached_end = {},
    raise_defer = {}, first_reason = {}, no_reason_check = {}, nreason = 0,
    nclean = 0, ran = {}, ran_at = {}, seq = 0, cleanup_task = {}, cleanup_kind = {},
    armed_by = {}, defer_log = {}, chans = {}, mutexes = {}, sems = {}, tokens = {},
    tok_cancelled = {}, tok_reason = {}, bound = {}, scopes = {}, holders = {},
    nvalues = 0, value_ch = {}, sent = {}, recvd = {}, recv_unsent = {}, join_checks = 0,
    do_abort = do_abort, do_cancel = do_cancel, threads = {}, refused = 0, nclosed = 0,
  }
end

local function drain(R, cx)
  for _ = 1, 20 do
    local any = false
    for id = 1, R.P.ntasks do
      local h = R.handles[id]
      if h and not h:done() then
        any = true
        quench.timeout(1000, h.join, h)
        if not h:done() then do_abort(R, cx, id, nil) end
      end
    end
    if not any then break end
  end
  local cancelled, failed = 0, 0
  for id = 1, R.P.ntasks do
    local h = R.handles[id]
    if h then
      if not h:done() then violation(R, "task %d still alive after the drain (%s)", id, h:state()) end
      local r = pack(h:join())
      check_join(R, id, "final join", r)
      if not r[1] then
        if quench.is_cancelled(r[2]) then cancelled = cancelled + 1 else failed = failed + 1 end
      end
    end
  end
  local st = quench.stats()
  if st.alive ~= 1 then
    violation(R, "stats: %d tasks alive after the drain (main only expected)", st.alive)
  end
  if #quench.tasks() ~= 1 then
    violation(R, "quench.tasks(): %d live tasks after the drain", #quench.tasks())
  end
  if st.spawned ~= R.nhandles + 1 then
    violation(R, "stats: %d spawned, the program spawned %d (+ main)", st.spawned, R.nhandles)
  end
  if st.cancelled ~= cancelled then
    violation(R, "stats: %d cancelled, joins saw %d", st.cancelled, cancelled)
  end
  if st.failed ~= failed then violation(R, "stats: %d failed, joins saw %d", st.failed, failed) end
end

local function main(R)
  local P = R.P
  for i, cap in ipairs(P.chans) do R.chans[i] = quench.channel(cap > 0 and cap or nil) end
  for i = 1, P.mutexes do R.mutexes[i] = quench.mutex() end
  for i, n in ipairs(P.sems) do R.sems[i] = quench.semaphore(n) end
  for k = 1, P.ntokens do
    local parent = P.token_parent[k]
    R.tokens[k] = parent and R.tokens[parent]:child() or quench.token()
  end
  local cx = { task = 0, branches = {} }
  local ok, e = pcall(quench.timeout, 1000, exec_block, R, P.main, 1, cx)
  if not ok then check_error(R, "main", e) end
  R.main_done = true
  if P.drain then drain(R, cx) end
  return "main done"
end

-- After quench.run returned: cleanups, handles, channels, locks.
local function final_checks(R)
  local P = R.P
  for name = 1, R.nclean do
    if R.ran[name] ~= 1 then
      violation(R, "after run: cleanup %d (%s of task %d) ran %d times", name,
        R.cleanup_kind[name], R.cleanup_task[name], R.ran[name] or 0)
    end
  end
  -- defers of a task: last first, and after every <close>/guard of the task
  local last_defer, first_defer = {}, {}
  for _, name in ipairs(R.defer_log) do
    local t = R.cleanup_task[name]
    if last_defer[t] and name > last_defer[t] then
      violation(R, "defers of task %d ran out of order (%d after %d)", t, name, last_defer[t])
    end
    last_defer[t] = name
    first_defer[t] = first_defer[t] or R.ran_at[name]
  end
  for name = 1, R.nclean do
    local t, kind = R.cleanup_task[name], R.cleanup_kind[name]
    if kind ~= "defer" and kind ~= "raise_defer" and first_defer[t] and R.ran_at[name]
        and R.ran_at[name] > first_defer[t] and t ~= 0 then
      violation(R, "cleanup %d (%s) of task %d ran after the task's defers", name, kind, t)
    end
  end
  for id = 1, P.ntasks do
    local h = R.handles[id]
    if h and not h:done() then violation(R, "after run: task %d is %s", id, h:state()) end
  end
  -- channels: what was sent is received exactly once or still queued
  local remaining = {}
  for i, ch in ipairs(R.chans) do
    while true do
      local v = ch:try_recv()
      if v == nil then break end
      if type(v) ~= "number" or R.value_ch[v] ~= i then
        violation(R, "channel %d holds %s, never sent on it", i, show(v))
      else
        remaining[v] = (remaining[v] or 0) + 1
      end
    end
  end
  for v = 1, R.nvalues do
    local n = (R.recvd[v] or 0) + (remaining[v] or 0)
    if R.sent[v] and n ~= 1 then
      violation(R, "value %d (channel %d): send returned true, received %d, still queued %d",
        v, R.value_ch[v], R.recvd[v] or 0, remaining[v] or 0)
    elseif not R.sent[v] and n ~= 0 then
      violation(R, "value %d (channel %d): its send never returned true, yet received %d, queued %d",
        v, R.value_ch[v], R.recvd[v] or 0, remaining[v] or 0)
    end
  end
  for i, m in ipairs(R.mutexes) do
    if m:is_locked() then violation(R, "after run: mutex %d is still locked", i) end
    local p = m:try_lock()
    if p == nil then violation(R, "after run: mutex %d try_lock failed", i) else p:release() end
  end
  for i, s in ipairs(R.sems) do
    if s:available() ~= P.sems[i] then
      violation(R, "after run: semaphore %d has %d of %d permits", i, s:available(), P.sems[i])
    end
  end
  for key, n in pairs(R.holders) do
    if n ~= 0 then violation(R, "after run: %s has %d holders", key, n) end
  end
end

--- M.run(seed_or_program): violations (a list of strings, empty if all
-- held) and an info table (counts).
function M.run(seed_or_program)
  load_quench()
  local P = type(seed_or_program) == "table" and seed_or_program or M.generate(seed_or_program)
  local R = new_state(P)
  local ok, e = pcall(quench.run, {
    clock = "virtual", seed = P.seed ~= 0 and P.seed or 1,
    on_task_error = function(err) check_error(R, "unjoined failed task", err) end,
  }, main, R)
  if not ok then violation(R, "quench.run raised: %s", show(e))
  elseif e ~= "main done" then violation(R, "quench.run returned %s", show(e)) end
  final_checks(R)
  return R.violations, { tasks = R.nhandles, cleanups = R.nclean, values = R.nvalues,
    joins = R.join_checks, refused = R.refused, closed = R.nclosed }
end

-- Every block of a program, for shrinking.
local function blocks_of(P)
  local out = {}
  local function walk(b)
    out[#out + 1] = b
    for _, st in ipairs(b) do
      if st.body then walk(st.body) end
      if st.branch and st.branch.body then walk(st.branch.body) end
      for _, br in ipairs(st.branches or {}) do if br.body then walk(br.body) end end
    end
  end
  walk(P.main)
  return out
end

--- M.shrink(P): a smaller program that still has violations (greedy:
-- delete one statement at a time while a violation remains).
function M.shrink(P, log)
  local changed = true
  local runs = 0
  while changed do
    changed = false
    for _, b in ipairs(blocks_of(P)) do
      local i = 1
      while i <= #b do
        local st = table.remove(b, i)
        runs = runs + 1
        local v = M.run(P)
        if #v > 0 then
          changed = true
          if log then log(string.format("shrink: removed a %s (%d runs)", st.op, runs)) end
        else
          table.insert(b, i, st)
          i = i + 1
        end
      end
    end
  end
  return P
end

M.repro = "SEED=%d lua5.4 spec/fuzz/cancel_random.lua"

---------------------------------------------------------------------------
-- Command line
---------------------------------------------------------------------------

local function script_main()
  package.cpath = (os.getenv("QUENCH_CPATH") or "./build/?.so") .. ";" .. package.cpath
  load_quench()
  local seed = tonumber(os.getenv("SEED") or "1") // 1
  local count = tonumber(os.getenv("COUNT") or "1") // 1
  local t0 = os.clock()
  local failed, stats = 0, { tasks = 0, cleanups = 0, values = 0, joins = 0 }
  for s = seed, seed + count - 1 do
    if os.getenv("DUMP") then print(M.dump(M.generate(s))) end
    local v, info = M.run(s)
    for k in pairs(stats) do stats[k] = stats[k] + info[k] end
    if #v > 0 then
      failed = failed + 1
      print(string.format("seed %d: %d violation(s)  (reproduce: " .. M.repro .. ")", s, #v, s))
      for _, msg in ipairs(v) do print("  " .. msg) end
      if os.getenv("SHRINK") then
        local P = M.shrink(M.generate(s), function(msg) io.stderr:write(msg, "\n") end)
        print(M.dump(P))
        for _, msg in ipairs(M.run(P)) do print("  " .. msg) end
      end
      if failed >= 20 then break end
    end
    if count > 1 and (s - seed + 1) % 10000 == 0 then
      io.stderr:write(string.format("%d programs, %d failed, %.0f s\n", s - seed + 1, failed,
        os.clock() - t0))
    end
  end
  print(string.format("%d program(s) from seed %d: %d failed; %d tasks, %d cleanups, %d values, "
    .. "%d join checks; %.1f s CPU", count, seed, failed, stats.tasks, stats.cleanups, stats.values,
    stats.joins, os.clock() - t0))
  os.exit(failed == 0 and 0 or 1)
end

if arg and arg[0] and arg[0]:match("cancel_random%.lua$") then script_main() end

return M
