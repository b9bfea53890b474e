--- Channels: mpmc channel, oneshot, broadcast, watch.
--
-- Expected outcomes are results (`nil, "closed"`, `nil, "full"`,
-- `nil, "empty"`); misuse raises (`nil` as a message:
-- `nil cannot be sent (send false or a sentinel)`). `try_*` methods never
-- wait and are not cancellation points. Guide:
-- [docs/sync.md](../../sync.md) (its "Cancel safety" table covers every
-- drop point).
-- @module channels

--- A channel: a FIFO queue with many senders and many receivers; each
-- message goes to one receiver.
--
-- **Cancel safety.** Not an await.
--
-- @tparam[opt] integer capacity at least 1; nil for unbounded (send never waits)
-- @treturn Channel the channel
-- @raise `bad argument #1 to 'channel' (capacity must be at least 1 (or nil: unbounded))`
function quench.channel(capacity) end

--- A new channel's first sender and receiver handles (see `Channel:sender`).
--
-- **Cancel safety.** Not an await.
--
-- @tparam[opt] integer capacity as for `quench.channel`
-- @treturn Sender tx
-- @treturn Receiver rx
-- @raise as `quench.channel`
function quench.channel_pair(capacity) end

--- A oneshot: one value from one sender to one receiver.
--
-- **Cancel safety.** Not an await.
--
-- @treturn OneshotSender tx
-- @treturn OneshotReceiver rx
-- @raise never
function quench.oneshot() end

--- A broadcast channel: every subscriber sees every message sent after it
-- subscribed.
--
-- A subscriber that falls more than `capacity` messages behind gets
-- `nil, "lagged", n` once and continues from the oldest message kept.
--
-- **Cancel safety.** Not an await.
--
-- @tparam integer capacity messages kept for slow subscribers, at least 1
-- @treturn Broadcast the sender
-- @raise `bad argument #1 to 'broadcast' (capacity must be at least 1)`
function quench.broadcast(capacity) end

--- A watch: a cell holding the latest value; subscribers wait for a value
-- newer than the last one they saw (intermediate values are skipped).
--
-- **Cancel safety.** Not an await.
--
-- @param[opt] value the initial value
-- @treturn Watch the sender
-- @raise never
function quench.watch(value) end

--- A channel (`quench.channel`). `<close>` closes it;
-- `tostring(ch)` is `quench.channel (2 queued)`.
-- @type Channel

--- Send `v`, waiting while a bounded channel is full.
--
-- **Cancel safety.** All or nothing: `true` means the message is in the
-- channel (or with a receiver); a send dropped at any point (waiting for
-- room, or given room but not yet resumed) delivered nothing, and the room
-- passes to the next sender. The caller still holds `v` and may send it
-- again.
--
-- * before it waits: nothing sent
-- * while waiting: **not delivered**; it leaves the queue of senders (only a
--   bounded channel waits; an unbounded send never does)
-- * given, not resumed: **not delivered**; the room it was given passes to
--   the next waiting sender (or stays free)
--
-- @param v the message (not nil)
-- @treturn ?boolean `true`, or nil
-- @treturn ?string `"closed"` when the channel was closed before the send
-- got room (a send given room before the close still delivers)
-- @raise `bad argument #2 to 'send' (nil cannot be sent ...)`; outside a
-- task; `Cancelled` in a cancelled task. This is an await.
function Channel:send(v) end

--- Receive the next message, waiting while the channel is empty.
--
-- After `close`, the messages still queued are received first, and so are
-- those of senders given room before the close: `"closed"` means nothing
-- can ever come again.
--
-- **Cancel safety.** Cancel-safe: a message is taken only when `recv`
-- returns it. A dropped recv loses nothing; a message already handed to it
-- goes back to the queue (no loss, no reordering: messages leave in the
-- order they were sent, whichever receiver is taken from first).
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken; it leaves the queue of receivers
-- * given, not resumed: the message goes back to the **front** of the
--   channel (to the next waiting receiver): no message lost or reordered
--
-- @return the message, or nil
-- @treturn ?string `"closed"` when the channel is closed, empty, and no
-- sender given room before the close is left to deliver
-- @raise outside a task; `Cancelled` in a cancelled task. This is an await.
function Channel:recv() end

--- Send without waiting.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @param v the message (not nil)
-- @treturn ?boolean `true`, or nil
-- @treturn ?string `"full"` or `"closed"`
-- @raise `bad argument #2 to 'try_send' (nil cannot be sent ...)`
function Channel:try_send(v) end

--- Receive without waiting.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @return the message, or nil
-- @treturn ?string `"empty"` (also while a sender given room before a
-- close has not delivered yet) or `"closed"` (as for `recv`)
-- @raise on a bad self
function Channel:try_recv() end

--- The op of `send(v)`.
--
-- **Cancel safety.** As `send`: a send_op that loses a select or times out
-- delivered nothing.
--
-- @param v the message (not nil)
-- @treturn Op an op returning what `send` returns
-- @raise `bad argument #2 to 'send_op' (nil cannot be sent ...)`
function Channel:send_op(v) end

--- The op of `recv()`.
--
-- **Cancel safety.** As `recv`: nothing is lost when it loses a select.
--
-- @treturn Op an op returning what `recv` returns
-- @raise on a bad self
function Channel:recv_op() end

--- Close the channel: senders still waiting for room (and later ones) get
-- `nil, "closed"`; those already given room deliver; receivers drain what
-- is queued and what those deliver, then get `nil, "closed"`. Idempotent.
--
-- **Cancel safety.** Not an await.
--
-- @raise on a bad self
function Channel:close() end

--- How many messages are queued.
--
-- **Cancel safety.** Not an await.
--
-- @treturn integer the count
-- @raise on a bad self
function Channel:len() end

--- Whether the channel was closed.
--
-- **Cancel safety.** Not an await.
--
-- @treturn boolean closed or not
-- @raise on a bad self
function Channel:is_closed() end

--- The bound given to `quench.channel`.
--
-- **Cancel safety.** Not an await.
--
-- @treturn ?integer the capacity, or nil for an unbounded channel
-- @raise on a bad self
function Channel:capacity() end

--- How many sends would be admitted now without waiting: 0 once closed or
-- while senders wait for room (they go first).
--
-- **Cancel safety.** Not an await.
--
-- @treturn ?integer the room, or nil for an open unbounded channel
-- @raise on a bad self
function Channel:room() end

--- Wait for one message, then take up to `max - 1` more that are queued,
-- without waiting again (tokio's `recv_many`): batches for a writer.
--
-- **Cancel safety.** As `recv`: only the first receive waits, and messages
-- are taken only when it returns; the rest are taken with no wait.
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken
-- * given, not resumed: the message handed to it goes back to the front
--
-- @tparam integer max at least 1
-- @treturn ?table an array of 1 to `max` messages, or nil
-- @treturn ?string `"closed"` as for `recv`
-- @raise `bad argument #1 to 'recv_many' (max must be an integer >= 1, ...)`;
-- outside a task; `Cancelled` in a cancelled task. This is an await.
function Channel:recv_many(max) end

--- An iterator for `for v in ch:iter() do ... end`: each step is a `recv`;
-- the loop ends when the channel is closed and drained.
--
-- **Cancel safety.** Each step is a `recv`: a loop dropped while waiting
-- loses no message.
--
-- @treturn function the iterator
-- @raise on a bad self; each step as `recv`
function Channel:iter() end

--- A counted sending handle (tokio's `Sender`): when the last sender handle
-- of the channel is closed (`close`, or a `<close>` variable), the channel
-- is closed, so its receivers end instead of waiting for ever. The channel
-- itself stays usable and uncounted.
--
-- **Cancel safety.** Not an await.
--
-- @treturn Sender a new handle
-- @raise on a bad self
function Channel:sender() end

--- A counted receiving handle: when the last receiver handle is closed, the
-- channel is closed and what is queued is dropped, so later sends fail with
-- `"closed"` and `tx:closed()` returns.
--
-- **Cancel safety.** Not an await.
--
-- @treturn Receiver a new handle
-- @raise on a bad self
function Channel:receiver() end

--- The sending half of a oneshot (`quench.oneshot.sender`). Closing it
-- unsent, also by `<close>`, tells the receiver (`nil, "closed"`).
-- @type OneshotSender

--- Send the value. Never waits.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @param v the value (not nil)
-- @treturn ?boolean `true`, or nil
-- @treturn ?string `"closed"` when the receiver is closed
-- @raise `quench.oneshot: a value was already sent`; a nil `v`.
function OneshotSender:send(v) end

--- Close the sender: a receiver still waiting gets `nil, "closed"`.
--
-- **Cancel safety.** Not an await.
--
-- @raise on a bad self
function OneshotSender:close() end

--- Whether the receiver was closed (nobody will read a value).
--
-- **Cancel safety.** Not an await.
--
-- @treturn boolean closed or not
-- @raise on a bad self
function OneshotSender:is_closed() end

--- The receiving half of a oneshot (`quench.oneshot.receiver`). `<close>`
-- closes it.
-- @type OneshotReceiver

--- Wait for the value.
--
-- **Cancel safety.** Cancel-safe: a dropped recv takes nothing; a value
-- already handed to it goes back, and the next `recv` returns it.
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken
-- * given, not resumed: the value goes back: the next `recv` returns it
--
-- @return the value, or nil
-- @treturn ?string `"closed"` when the sender closed without sending (or
-- the value was already received)
-- @raise outside a task; `Cancelled` in a cancelled task. This is an await.
function OneshotReceiver:recv() end

--- Take the value if it is there. Never waits.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @return the value, or nil
-- @treturn ?string `"empty"` or `"closed"`
-- @raise on a bad self
function OneshotReceiver:try_recv() end

--- The op of `recv()`.
--
-- **Cancel safety.** As `recv`.
--
-- @treturn Op an op returning what `recv` returns
-- @raise on a bad self
function OneshotReceiver:recv_op() end

--- Close the receiver: the sender's `send` returns `nil, "closed"`.
--
-- **Cancel safety.** Not an await.
--
-- @raise on a bad self
function OneshotReceiver:close() end

--- The sending side of a broadcast channel (`quench.broadcast`). `<close>`
-- closes it.
-- @type Broadcast

--- Send `v` to every current subscriber. Never waits: the oldest message
-- is overwritten when the ring is full (slow subscribers then lag).
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @param v the message (not nil)
-- @treturn ?integer how many receivers will see it (subscribed and not
-- closed; 0 is still a success), or nil
-- @treturn ?string `"closed"`
-- @raise `bad argument #2 to 'send' (nil cannot be sent)`
function Broadcast:send(v) end

--- How many receivers are subscribed and not closed (a receiver also stops
-- counting when it is collected).
--
-- **Cancel safety.** Not an await.
--
-- @treturn integer
-- @raise on a bad self
function Broadcast:receiver_count() end

--- Close: subscribers get the messages still kept, then `nil, "closed"`.
--
-- **Cancel safety.** Not an await.
--
-- @raise on a bad self
function Broadcast:close() end

--- A new subscriber, seeing the messages sent from now on.
--
-- **Cancel safety.** Not an await.
--
-- @treturn BroadcastReceiver the subscriber
-- @raise on a bad self
function Broadcast:subscribe() end

--- A subscriber of a broadcast channel (`quench.broadcast.receiver`).
-- @type BroadcastReceiver

--- Wait for the next message.
--
-- **Cancel safety.** Cancel-safe: the subscriber's position moves only when
-- `recv` returns, so a dropped recv loses nothing (unless the message is
-- overwritten meanwhile: then `lagged`, as for any slow subscriber).
--
-- * before it waits: nothing read
-- * while waiting: nothing read
-- * given, not resumed: nothing read: the subscriber's position moves only
--   when `recv` returns, so the message is still there for the next `recv`
--   (unless it is overwritten meanwhile: then `lagged`, as for any slow
--   subscriber)
--
-- @return the message, or nil
-- @treturn ?string `"lagged"` or `"closed"`
-- @treturn ?integer with `"lagged"`: how many messages were skipped
-- @raise outside a task; `Cancelled` in a cancelled task. This is an await.
function BroadcastReceiver:recv() end

--- Take the next message if there is one. Never waits.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @return the message, or nil
-- @treturn ?string `"empty"`, `"lagged"` or `"closed"`
-- @treturn ?integer with `"lagged"`: how many messages were skipped
-- @raise on a bad self
function BroadcastReceiver:try_recv() end

--- The op of `recv()`.
--
-- **Cancel safety.** As `recv`.
--
-- @treturn Op an op returning what `recv` returns
-- @raise on a bad self
function BroadcastReceiver:recv_op() end

--- Stop receiving: the receiver no longer counts in `receiver_count` and
-- `send`'s result; a later `recv` that would wait raises. Idempotent;
-- `<close>` and collection do the same.
--
-- **Cancel safety.** Not an await.
--
-- @raise on a bad self
function BroadcastReceiver:close() end

--- How many messages were sent that this receiver has not received yet (at
-- most the capacity: older ones are lost to it as a lag).
--
-- **Cancel safety.** Not an await.
--
-- @treturn integer
-- @raise on a bad self
function BroadcastReceiver:len() end

--- The sending side of a watch (`quench.watch`). `<close>` closes it.
-- @type Watch

--- Replace the value and wake the subscribers. `nil` is allowed.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @param v the new value
-- @treturn ?boolean `true`, or nil
-- @treturn ?string `"closed"`
-- @raise on a bad self
function Watch:send(v) end

--- The current value.
--
-- **Cancel safety.** Not an await.
--
-- @return the value
-- @raise on a bad self
function Watch:get() end

--- Close: subscribers get `nil, "closed"` once they have seen the last value.
--
-- **Cancel safety.** Not an await.
--
-- @raise on a bad self
function Watch:close() end

--- Whether the watch was closed.
--
-- **Cancel safety.** Not an await.
--
-- @treturn boolean
-- @raise on a bad self
function Watch:is_closed() end

--- Change the value with `fn(value)` and tell every receiver, as `send`
-- does (tokio's `send_modify`): `fn` changes a table in place, or returns a
-- new value (nil keeps the current one). If `fn` raises, nothing changes
-- and no receiver is told.
--
-- **Cancel safety.** Not an await.
--
-- @tparam function fn called as `fn(value)`
-- @treturn ?boolean `true`, or nil
-- @treturn ?string `"closed"` (then `fn` is not called)
-- @raise `bad argument #1 to 'send_modify' (function expected, ...)`; `fn`'s error
function Watch:send_modify(fn) end

--- A new subscriber; the current value counts as seen.
--
-- **Cancel safety.** Not an await.
--
-- @treturn WatchReceiver the subscriber
-- @raise on a bad self
function Watch:subscribe() end

--- A subscriber of a watch (`quench.watch.receiver`).
-- @type WatchReceiver

--- The current value, now marked seen.
--
-- **Cancel safety.** Not an await.
--
-- @return the value
-- @raise on a bad self
function WatchReceiver:get() end

--- Whether a value was sent since the last one seen.
--
-- **Cancel safety.** Not an await.
--
-- @treturn boolean changed or not
-- @raise on a bad self
function WatchReceiver:has_changed() end

--- Wait for a value not seen yet and return it (at once if there is one).
--
-- **Cancel safety.** Cancel-safe: a value counts as seen only when
-- `changed` (or `get`) returns it, so after a drop `has_changed()` stays
-- true and the next `changed` returns at once.
--
-- * before it waits: nothing seen
-- * while waiting: nothing seen
-- * given, not resumed: nothing seen: a value counts as seen only when
--   `changed` (or `get`) returns it, so `has_changed()` stays true and the
--   next `changed` returns at once
--
-- @return the new value (possibly nil), or nil
-- @treturn ?string `"closed"` when closed with nothing new
-- @raise outside a task; `Cancelled` in a cancelled task. This is an await.
function WatchReceiver:changed() end

--- The op of `changed()`.
--
-- **Cancel safety.** As `changed`.
--
-- @treturn Op an op returning what `changed` returns
-- @raise on a bad self
function WatchReceiver:changed_op() end

--- Make the current value count as unseen: `has_changed` is true and the
-- next `changed` returns at once (tokio's `mark_changed`).
--
-- **Cancel safety.** Not an await.
--
-- @raise on a bad self
function WatchReceiver:mark_changed() end

--- Make the current value count as seen.
--
-- **Cancel safety.** Not an await.
--
-- @raise on a bad self
function WatchReceiver:mark_unchanged() end

--- Return the current value if `pred(value)` holds; otherwise wait for
-- changes until a value satisfies it (tokio's `wait_for`). The value
-- returned is marked seen.
--
-- **Cancel safety.** Cancel-safe: each wait is a `changed`; a dropped
-- `wait_for` loses no value (values it looked at and refused are marked
-- seen, as they were not wanted).
--
-- * before it waits: the current value is marked seen
-- * while waiting: nothing lost
-- * given, not resumed: nothing lost (the next call sees the value again)
--
-- @tparam function pred called as `pred(value)`
-- @return the first value for which `pred` is true, or nil
-- @treturn ?string `"closed"` when the watch closed first
-- @raise `bad argument #1 to 'wait_for' (function expected, ...)`; `pred`'s
-- error; outside a task; `Cancelled` in a cancelled task. This is an await.
function WatchReceiver:wait_for(pred) end

--- The op of `wait_for(pred)` (`quench.op(rx.wait_for, rx, pred)`).
--
-- **Cancel safety.** As `wait_for`.
--
-- @tparam function pred the predicate
-- @treturn Op an op returning what `wait_for` returns
-- @raise `bad argument #1 to 'wait_for_op' (function expected, ...)`
function WatchReceiver:wait_for_op(pred) end

--- A counted sending handle (`ch:sender()`, `tx:clone()`,
-- `quench.channel_pair`). `<close>` is `close`. Garbage collection never
-- closes a handle: close it, or hold it in a `<close>` variable.
-- @type Sender

--- As `Channel:send`.
--
-- **Cancel safety.** As `Channel:send`.
--
-- @param v the message
-- @treturn ?boolean `true`, or nil
-- @treturn ?string `"closed"` (also once every receiver handle is gone)
-- @raise `quench.sender:send: this handle was closed`; as `Channel:send`.
-- This is an await.
function Sender:send(v) end

--- As `Channel:try_send`.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @param v the message
-- @treturn ?boolean `true`, or nil
-- @treturn ?string `"full"` or `"closed"`
-- @raise on a closed handle
function Sender:try_send(v) end

--- As `Channel:send_op`.
--
-- **Cancel safety.** As `Channel:send`.
--
-- @param v the message
-- @treturn Op the op
-- @raise on a closed handle
function Sender:send_op(v) end

--- Another sender handle of the same channel (counted).
--
-- **Cancel safety.** Not an await.
--
-- @treturn Sender the new handle
-- @raise on a closed handle
function Sender:clone() end

--- Close this handle (idempotent); the last sender's close closes the
-- channel.
--
-- **Cancel safety.** Not an await.
--
-- @raise on a bad self
function Sender:close() end

--- Wait until every receiver handle of the channel is closed (tokio's
-- `Sender::closed`): a producer stops producing for nobody.
--
-- **Cancel safety.** Cancel-safe: waiting takes nothing.
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken
-- * given, not resumed: nothing lost (the receivers stay gone)
--
-- @raise on a closed handle; outside a task; `Cancelled` in a cancelled
-- task. This is an await.
function Sender:closed() end

--- The op of `closed`.
--
-- **Cancel safety.** As `closed`.
--
-- @treturn Op the op
-- @raise on a closed handle
function Sender:closed_op() end

--- Whether the channel is closed (by a close, or because every receiver
-- handle is gone).
--
-- **Cancel safety.** Not an await.
--
-- @treturn boolean
-- @raise on a closed handle
function Sender:is_closed() end

--- As `Channel:len`.
--
-- **Cancel safety.** Not an await.
--
-- @treturn integer
-- @raise on a closed handle
function Sender:len() end

--- As `Channel:capacity`.
--
-- **Cancel safety.** Not an await.
--
-- @treturn ?integer
-- @raise on a closed handle
function Sender:capacity() end

--- A counted receiving handle (`ch:receiver()`, `rx:clone()`,
-- `quench.channel_pair`). `<close>` is `close`.
-- @type Receiver

--- As `Channel:recv`.
--
-- **Cancel safety.** As `Channel:recv`.
--
-- @return the message, or nil
-- @treturn ?string `"closed"`
-- @raise `quench.receiver:recv: this handle was closed`; as `Channel:recv`.
-- This is an await.
function Receiver:recv() end

--- As `Channel:try_recv`.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @return the message, or nil
-- @treturn ?string `"empty"` or `"closed"`
-- @raise on a closed handle
function Receiver:try_recv() end

--- As `Channel:recv_op`.
--
-- **Cancel safety.** As `Channel:recv`.
--
-- @treturn Op the op
-- @raise on a closed handle
function Receiver:recv_op() end

--- As `Channel:recv_many`.
--
-- **Cancel safety.** As `Channel:recv_many`.
--
-- @tparam integer max at least 1
-- @treturn ?table the messages
-- @treturn ?string `"closed"`
-- @raise on a closed handle; as `Channel:recv_many`. This is an await.
function Receiver:recv_many(max) end

--- As `Channel:iter`.
--
-- **Cancel safety.** As `Channel:iter`.
--
-- @treturn function the iterator
-- @raise on a closed handle
function Receiver:iter() end

--- Another receiver handle of the same channel (counted).
--
-- **Cancel safety.** Not an await.
--
-- @treturn Receiver the new handle
-- @raise on a closed handle
function Receiver:clone() end

--- Close this handle (idempotent); the last receiver's close closes the
-- channel, drops what is queued and wakes `tx:closed()`.
--
-- **Cancel safety.** Not an await.
--
-- @raise on a bad self
function Receiver:close() end

--- Whether the channel is closed.
--
-- **Cancel safety.** Not an await.
--
-- @treturn boolean
-- @raise on a closed handle
function Receiver:is_closed() end

--- As `Channel:len`.
--
-- **Cancel safety.** Not an await.
--
-- @treturn integer
-- @raise on a closed handle
function Receiver:len() end

--- As `Channel:capacity`.
--
-- **Cancel safety.** Not an await.
--
-- @treturn ?integer
-- @raise on a closed handle
function Receiver:capacity() end
