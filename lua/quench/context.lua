-- Task-local context (quench.context): values set for a function's dynamic
-- extent and seen by every task spawned inside it. A context is an
-- immutable chain of frames {key, value, parent}; lua/context.c keeps which
-- frame is current for each coroutine and copies the reference at spawn.
-- with() pushes a frame for the call and restores the previous one however
-- the call ends (a <close> variable, so a drop restores it too); a child's
-- with() makes its own frame, which its parent never sees.
local quench, internal = ...

local ctx_get, ctx_set = internal.ctx_get, internal.ctx_set

local context = {}
quench.context = context

-- Restores the running coroutine's previous frame at the end of a with().
local Restore = { __close = function(self) ctx_set(self[1]) end }

--- context.with(key, value, fn, ...): fn(...) with key bound to value.
function context.with(key, value, fn, ...)
  if key == nil or key ~= key then
    error("bad argument #1 to 'with' (key expected, got " .. (key == nil and "nil" or "NaN") .. ")", 2)
  end
  if type(fn) ~= "function" then
    error("bad argument #3 to 'with' (function expected, got " .. type(fn) .. ")", 2)
  end
  local old = ctx_set({ key, value, ctx_get() })
  local _restore <close> = setmetatable({ old }, Restore)
  return fn(...)
end

--- context.get(key [, default]): the innermost value bound to key.
function context.get(key, default)
  local f = ctx_get()
  while f do
    if rawequal(f[1], key) then return f[2] end
    f = f[3]
  end
  return default
end

--- context.key(name): a fresh key (a table whose tostring names it), so two
-- libraries never share a key by accident.
function context.key(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'key' (string expected, got " .. type(name) .. ")", 2)
  end
  return setmetatable({}, { __name = "quench.context.key", __tostring = function()
    return "quench.context.key (" .. name .. ")"
  end })
end
