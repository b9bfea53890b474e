-- Linked tokens, built on t:on_cancel: quench.token_any(t1, t2, ...) is a
-- new root token cancelled (with the first source's reason) when any source
-- is. Its registrations on the sources are removed as soon as it is
-- cancelled, so a short-lived linked token does not stay in a long-lived
-- source's list (cancel it, or hold its guard, when it is no longer needed).
local quench = ...

--- quench.token_any(...): a token cancelled when any of the tokens given is.
function quench.token_any(...)
  local n = select("#", ...)
  if n == 0 then
    error("bad argument #1 to 'token_any' (quench.token expected, got no value)", 2)
  end
  local sources = table.pack(...)
  local mt = getmetatable(quench.token())
  for i = 1, n do
    if getmetatable(sources[i]) ~= mt then
      error("bad argument #" .. i .. " to 'token_any' (quench.token expected, got "
        .. type(sources[i]) .. ")", 2)
    end
  end
  local linked = quench.token()
  for i = 1, n do
    if sources[i]:is_cancelled() then
      linked:cancel(sources[i]:reason())
      return linked
    end
  end
  local regs = {}
  local function pass(reason) linked:cancel(reason) end
  for i = 1, n do regs[i] = sources[i]:on_cancel(pass) end
  linked:on_cancel(function()
    for i = 1, n do regs[i]:remove() end
  end)
  return linked
end
