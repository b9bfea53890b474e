-- Channel sugar: iteration, receiving many at once, and sender/receiver
-- handles that count themselves, so a channel closes when its last sender
-- goes and refuses sends when its last receiver goes (tokio's mpsc ends).
--
-- The counts live beside the channel (a weak-keyed table), not in it: a
-- channel used without handles pays nothing. Handles are closed by close()
-- or a <close> variable; garbage collection never closes one (a finalizer
-- may run in the middle of a channel operation, and the project never
-- treats collection as a signal).
local quench = ...

local Channel = getmetatable(quench.channel(1)).__index

local function check_max(max, fname)
  if math.type(max) ~= "integer" or max < 1 then
    error("bad argument #1 to '" .. fname .. "' (max must be an integer >= 1, got "
      .. (type(max) == "number" and tostring(max) or type(max)) .. ")", 3)
  end
end

local function recv_many(ch, max)
  local v, err = ch:recv()
  if v == nil then return nil, err end
  local out = { v }
  for i = 2, max do                     -- what is queued: no further wait
    local w = ch:try_recv()
    if w == nil then break end
    out[i] = w
  end
  return out
end

--- ch:recv_many(max): wait for one message, then take up to max - 1 more
-- that are queued, without waiting; an array, or nil, "closed".
function Channel:recv_many(max)
  check_max(max, "recv_many")
  return recv_many(self, max)
end

--- for v in ch:iter() do ... end: receive until the channel is closed and
-- drained.
function Channel:iter()
  local ch = self
  ch:len()                              -- checks self now, not at the first step
  return function()
    local v = ch:recv()
    return v
  end
end

---------------------------------------------------------------------------
-- Sender and receiver handles
---------------------------------------------------------------------------

local ends = setmetatable({}, { __mode = "k" })   -- channel -> counts

local function ends_of(ch)
  local e = ends[ch]
  if not e then
    e = { senders = 0, receivers = 0, rx_gone = quench.token() }
    ends[ch] = e
  end
  return e
end

local Sender = { __name = "quench.sender" }
Sender.__index = Sender
local Receiver = { __name = "quench.receiver" }
Receiver.__index = Receiver

local function check(self, cls, tname, name)
  if getmetatable(self) ~= cls then
    error("bad argument #1 to '" .. name .. "' (" .. tname .. " expected, got " .. type(self)
      .. "; call it with a colon: x:" .. name .. "(...))", 3)
  end
  if self.gone then error(tname .. ":" .. name .. ": this handle was closed", 3) end
  return self.ch
end

local function new_sender(ch)
  local e = ends_of(ch)
  e.senders = e.senders + 1
  return setmetatable({ ch = ch, e = e }, Sender)
end

local function new_receiver(ch)
  local e = ends_of(ch)
  e.receivers = e.receivers + 1
  return setmetatable({ ch = ch, e = e }, Receiver)
end

--- ch:sender(): a counted sending handle.
function Channel:sender()
  self:len()
  return new_sender(self)
end

--- ch:receiver(): a counted receiving handle.
function Channel:receiver()
  self:len()
  return new_receiver(self)
end

function Sender:send(v) return check(self, Sender, "quench.sender", "send"):send(v) end
function Sender:try_send(v) return check(self, Sender, "quench.sender", "try_send"):try_send(v) end
function Sender:send_op(v) return check(self, Sender, "quench.sender", "send_op"):send_op(v) end
function Sender:clone() return new_sender(check(self, Sender, "quench.sender", "clone")) end

--- The last sender's close closes the channel.
function Sender:close()
  if getmetatable(self) ~= Sender then check(self, Sender, "quench.sender", "close") end
  if self.gone then return end
  self.gone = true
  local e = self.e
  e.senders = e.senders - 1
  if e.senders == 0 then self.ch:close() end
end
Sender.__close = Sender.close

--- Wait until every receiver handle is closed (at once if they are).
function Sender:closed()
  check(self, Sender, "quench.sender", "closed")
  self.e.rx_gone:cancelled()
end

function Sender:closed_op()
  check(self, Sender, "quench.sender", "closed_op")
  return self.e.rx_gone:cancelled_op()
end

--- Whether a send can no longer succeed: the channel is closed (which
-- includes every receiver handle having gone).
function Sender:is_closed()
  return check(self, Sender, "quench.sender", "is_closed"):is_closed()
end

function Receiver:recv() return check(self, Receiver, "quench.receiver", "recv"):recv() end
function Receiver:try_recv() return check(self, Receiver, "quench.receiver", "try_recv"):try_recv() end
function Receiver:recv_op() return check(self, Receiver, "quench.receiver", "recv_op"):recv_op() end
function Receiver:clone() return new_receiver(check(self, Receiver, "quench.receiver", "clone")) end

function Receiver:recv_many(max)
  local ch = check(self, Receiver, "quench.receiver", "recv_many")
  check_max(max, "recv_many")
  return recv_many(ch, max)
end

function Receiver:iter()
  return check(self, Receiver, "quench.receiver", "iter"):iter()
end

--- The last receiver's close closes the channel and drops what is queued:
-- sends fail with "closed" from then on, and senders waiting in
-- tx:closed() wake.
function Receiver:close()
  if getmetatable(self) ~= Receiver then check(self, Receiver, "quench.receiver", "close") end
  if self.gone then return end
  self.gone = true
  local e = self.e
  e.receivers = e.receivers - 1
  if e.receivers == 0 then
    local ch = self.ch
    ch:close()
    while ch:try_recv() ~= nil do end   -- nobody can read them: release them now
    e.rx_gone:cancel()
  end
end
Receiver.__close = Receiver.close

function Receiver:is_closed()
  return check(self, Receiver, "quench.receiver", "is_closed"):is_closed()
end

for _, cls in ipairs({ Sender, Receiver }) do
  local tname = cls.__name
  cls.len = function(self) return check(self, cls, tname, "len"):len() end
  cls.capacity = function(self) return check(self, cls, tname, "capacity"):capacity() end
  cls.__tostring = function(self)
    return tname .. " (" .. (self.gone and "closed" or "open") .. ")"
  end
end

--- quench.channel_pair([capacity]): a new channel's first sender and receiver.
function quench.channel_pair(capacity)
  local ch = quench.channel(capacity)
  return new_sender(ch), new_receiver(ch)
end

---------------------------------------------------------------------------
-- Watch: send_modify, wait_for
---------------------------------------------------------------------------

local Watch = getmetatable(quench.watch()).__index
local WatchRx = getmetatable(quench.watch():subscribe()).__index

--- tx:send_modify(fn): fn(value) changes the value in place (or returns a
-- new one) and every receiver is told, as by send.
function Watch:send_modify(fn)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'send_modify' (function expected, got " .. type(fn) .. ")", 2)
  end
  if self:is_closed() then return nil, "closed" end
  local cur = self:get()
  local new = fn(cur)                   -- an error here changes nothing
  if new == nil then new = cur end
  return self:send(new)
end

--- rx:wait_for(pred): the current value if pred(value) holds, else wait
-- for changes until one does; the value (marked seen), or nil, "closed".
function WatchRx:wait_for(pred)
  if type(pred) ~= "function" then
    error("bad argument #1 to 'wait_for' (function expected, got " .. type(pred) .. ")", 2)
  end
  local v = self:get()
  while not pred(v) do
    local err
    v, err = self:changed()
    if err == "closed" then return nil, "closed" end
  end
  return v
end

function WatchRx:wait_for_op(pred)
  if type(pred) ~= "function" then
    error("bad argument #1 to 'wait_for_op' (function expected, got " .. type(pred) .. ")", 2)
  end
  return quench.op(self.wait_for, self, pred)
end

---------------------------------------------------------------------------
-- Select with a default
---------------------------------------------------------------------------

--- quench.try_select(...): as select_biased, but nothing waits: the index
-- and results of the first branch ready now, or nil when none is (Go's
-- select with a default case).
function quench.try_select(...)
  local n = select("#", ...)
  if n == 0 then error("quench.try_select: needs at least one branch", 2) end
  local default = quench.token()        -- a cancelled token's op is ready at once
  default:cancel()
  local args = table.pack(...)
  args[n + 1] = default:cancelled_op()
  -- biased: the branches are polled in order before the default, so a
  -- branch ready now wins; the others, the default among them, are dropped
  local r = table.pack(quench.select_biased(table.unpack(args, 1, n + 1)))
  if r[1] == n + 1 then return nil end
  return table.unpack(r, 1, r.n)
end
