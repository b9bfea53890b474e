--- Synchronisation: mutex, rwlock, semaphore, notify, barrier.
--
-- Locks and semaphores are fair (FIFO). `lock`, `read`, `write` and
-- `acquire` return a Permit: release it with `<close>` (or
-- `p:release()`). Garbage collection never releases a permit: a forgotten
-- one keeps its lock held (and `quench.run`'s deadlock check reports it).
-- Guide: [docs/sync.md](../../sync.md).
-- @module sync

--- A mutex: one holder at a time.
--
-- **Cancel safety.** Not an await.
--
-- @treturn Mutex the mutex
-- @raise never
function quench.mutex() end

--- A readers-writer lock: many readers or one writer, in FIFO order.
--
-- A reader takes one of `max_readers` permits and a writer all of them, so
-- at most `max_readers` readers hold it at once (tokio's
-- `RwLock::with_max_readers`).
--
-- **Cancel safety.** Not an await.
--
-- @tparam[opt=2^30] integer max_readers from 1 to 2^30
-- @treturn RwLock the lock
-- @raise `bad argument #1 to 'rwlock' (max_readers must be between 1 and 2^30)`
function quench.rwlock(max_readers) end

--- A counting semaphore with `n` permits.
--
-- **Cancel safety.** Not an await.
--
-- @tparam integer n permits, from 0 to 2^30
-- @treturn Semaphore the semaphore
-- @raise `bad argument #1 to 'semaphore' (permits must be between 0 and 2^30)`
function quench.semaphore(n) end

--- A notify (as tokio's): `notify_one` wakes one waiter or stores one
-- notification for the next; `notify_all` wakes every current waiter.
--
-- **Cancel safety.** Not an await.
--
-- @treturn Notify the notify
-- @raise never
function quench.notify() end

--- A barrier for `n` tasks: `wait` returns once `n` tasks are waiting.
--
-- **Cancel safety.** Not an await.
--
-- @tparam integer n tasks, at least 1
-- @treturn Barrier the barrier
-- @raise `bad argument #1 to 'barrier' (a barrier needs at least 1 task)`
function quench.barrier(n) end

--- A mutex (`quench.mutex`).
-- @type Mutex

--- Wait for the lock; return the guard that holds it.
--
-- **Cancel safety.** Cancel-safe: a waiter dropped at any point never ends
-- up holding the lock; one granted to it just before is released again, to
-- the next waiter in order.
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken; it leaves the queue (if it was first,
--   smaller requests behind it may now be served)
-- * given, not resumed: the permits are released at once and go to the next
--   waiters in order: a dropped waiter **never** ends up holding the lock
--
-- @treturn Permit the guard: hold it in a `<close>` variable
-- @raise outside a task; `Cancelled` in a cancelled task. This is an await.
-- @usage local guard <close> = m:lock()
function Mutex:lock() end

--- Take the lock if it is free. Never waits.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn ?Permit the guard, or nil if the lock is held
-- @raise on a bad self
function Mutex:try_lock() end

--- The op of `lock()`.
--
-- **Cancel safety.** As `lock`.
--
-- @treturn Op an op returning the guard
-- @raise on a bad self
function Mutex:lock_op() end

--- Whether the mutex is held.
--
-- **Cancel safety.** Not an await.
--
-- @treturn boolean held or not
-- @raise on a bad self
function Mutex:is_locked() end

--- A readers-writer lock (`quench.rwlock`).
-- @type RwLock

--- Wait for a read lock (shared with other readers).
--
-- **Cancel safety.** As `Mutex:lock`: a dropped waiter never holds it.
--
-- @treturn Permit the guard
-- @raise outside a task; `Cancelled` in a cancelled task. This is an await.
function RwLock:read() end

--- Wait for the write lock (exclusive).
--
-- **Cancel safety.** As `Mutex:lock`. If the dropped waiter was first in
-- line, smaller requests behind it may now be served.
--
-- @treturn Permit the guard
-- @raise outside a task; `Cancelled` in a cancelled task. This is an await.
function RwLock:write() end

--- Take a read lock if one is free now. Never waits.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn ?Permit the guard, or nil
-- @raise on a bad self
function RwLock:try_read() end

--- Take the write lock if it is free now. Never waits.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn ?Permit the guard, or nil
-- @raise on a bad self
function RwLock:try_write() end

--- The op of `read()`.
--
-- **Cancel safety.** As `read`.
--
-- @treturn Op an op returning the guard
-- @raise on a bad self
function RwLock:read_op() end

--- The op of `write()`.
--
-- **Cancel safety.** As `write`.
--
-- @treturn Op an op returning the guard
-- @raise on a bad self
function RwLock:write_op() end

--- A semaphore (`quench.semaphore`).
-- @type Semaphore

--- Wait for `k` permits at once.
--
-- **Cancel safety.** Cancel-safe: a dropped acquire never keeps a permit;
-- permits granted to it just before go to the next waiters in order.
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken; it leaves the queue (if it was first,
--   smaller requests behind it may now be served)
-- * given, not resumed: the permits are released at once and go to the next
--   waiters in order: a dropped waiter **never** ends up holding the lock
--
-- After `close`, a waiting acquire and every later one return `nil,
-- "closed"` (holding nothing).
--
-- A request for more permits than the semaphore has in all waits for
-- `add_permits` (tokio's `acquire_many`), as a queue head: later requests wait
-- behind it.
--
-- @tparam[opt=1] integer k permits, from 1 to 2^30
-- @treturn ?Permit a permit holding `k`, or nil
-- @treturn ?string `"closed"` once the semaphore is closed
-- @raise `bad argument #1 to 'acquire' (must take at least 1 permit)`, `(more
-- than 2^30 permits)`; outside a task; `Cancelled` in a
-- cancelled task. This is an await.
function Semaphore:acquire(k) end

--- Take `k` permits if they are available now. Never waits.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @tparam[opt=1] integer k permits
-- @treturn ?Permit a permit, or nil
-- @treturn ?string `"closed"` once the semaphore is closed (nothing: busy)
-- @raise as `acquire` for a bad `k`
function Semaphore:try_acquire(k) end

--- The op of `acquire(k)`.
--
-- **Cancel safety.** As `acquire`.
--
-- @tparam[opt=1] integer k permits
-- @treturn Op an op returning the permit
-- @raise as `acquire` for a bad `k`
function Semaphore:acquire_op(k) end

--- How many permits are free.
--
-- **Cancel safety.** Not an await.
--
-- @treturn integer the count
-- @raise on a bad self
function Semaphore:available() end

--- Add `n` permits (the total grows): waiters are served first, in order.
--
-- **Cancel safety.** Not an await.
--
-- @tparam integer n permits, `>= 0`
-- @raise `bad argument #1 to 'add_permits' (permits to add must be >= 0)`,
-- `(the semaphore would have more than 2^30 permits)`
function Semaphore:add_permits(n) end

--- Take up to `n` available permits away for good (tokio's
-- `forget_permits`); the total shrinks. Permits held are not touched.
--
-- **Cancel safety.** Not an await.
--
-- @tparam integer n permits, `>= 0`
-- @treturn integer how many were taken away
-- @raise `bad argument #1 to 'forget_permits' (permits to forget must be >= 0)`
function Semaphore:forget_permits(n) end

--- Close the semaphore: waiting acquires return `nil, "closed"` at once,
-- and so does every later acquire; permits already held stay valid and
-- are released as usual. Idempotent.
--
-- **Cancel safety.** Not an await.
--
-- @raise on a bad self
function Semaphore:close() end

--- Whether the semaphore was closed.
--
-- **Cancel safety.** Not an await.
--
-- @treturn boolean
-- @raise on a bad self
function Semaphore:is_closed() end

--- What `lock`, `read`, `write` and `acquire` return (`quench.permit`):
-- the lock or permits it holds go back on `<close>` or `release`.
-- @type Permit

--- Give the lock or permits back. Idempotent.
--
-- **Cancel safety.** Not an await.
--
-- @raise on a bad self
function Permit:release() end

--- The same as `release` (reads better for a mutex guard).
--
-- **Cancel safety.** Not an await.
--
-- @raise on a bad self
function Permit:unlock() end

--- Whether the permit still holds its lock or permits.
--
-- **Cancel safety.** Not an await.
--
-- @treturn boolean held or not
-- @raise on a bad self
function Permit:held() end

--- How many permits it holds (0 once released, forgotten or merged away).
--
-- **Cancel safety.** Not an await.
--
-- @treturn integer
-- @raise on a bad self
function Permit:count() end

--- Drop the permits without giving them back: they leave the semaphore
-- for good (its total shrinks). A semaphore's permits only.
--
-- **Cancel safety.** Not an await.
--
-- @raise `quench.permit:forget: the permit was released`; `(only a
-- semaphore's permits can be forgotten)`
function Permit:forget() end

--- Split `k` of the permits off into a new permit (a semaphore's only);
-- this one keeps the rest.
--
-- **Cancel safety.** Not an await.
--
-- @tparam integer k from 1 to `count() - 1`
-- @treturn Permit the new permit
-- @raise `bad argument #1 to 'split' (must split at least 1 permit and leave
-- at least 1)`; on a released permit
function Permit:split(k) end

--- Take the permits of `other` (of the same semaphore) into this one;
-- `other` is spent.
--
-- **Cancel safety.** Not an await.
--
-- @tparam Permit other a held permit of the same semaphore
-- @raise `bad argument #1 to 'merge' (the permits belong to different
-- semaphores)`, `(cannot merge a permit into itself)`; on a released permit
function Permit:merge(other) end

--- Turn a write permit of an rwlock into a read permit, with no moment in
-- which the lock is free: readers waiting get in, writers still wait.
--
-- **Cancel safety.** Not an await.
--
-- @raise `quench.permit:downgrade: not a write permit of an rwlock`; on a
-- released permit
function Permit:downgrade() end

--- A notify (`quench.notify`).
-- @type Notify

--- Wake the first waiter, or store one notification for the next
-- `notified` if nobody waits.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @raise on a bad self
function Notify:notify_one() end

--- Wake every task waiting now; nothing is stored.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @raise on a bad self
function Notify:notify_all() end

--- As `notify_one`, but wakes the newest waiter (LIFO, tokio's
-- `notify_last`): the warmest worker of a pool. Stores one notification
-- when nobody waits.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @raise on a bad self
function Notify:notify_last() end

--- Wait for a notification (at once if one is stored).
--
-- **Cancel safety.** A stored notification is not consumed by a drop; a
-- `notify_one` given to a dropped waiter passes to the next waiter (or is
-- stored), so none is lost. A `notify_all` is lost for a dropped waiter.
--
-- * before it waits: a stored notification is not consumed
-- * while waiting: nothing consumed
-- * given, not resumed: woken by `notify_one`: the notification passes to
--   the next waiter, or is stored if there is none, so no `notify_one` is
--   lost. Woken by `notify_all`: lost for this waiter (`notify_all` is for
--   the tasks waiting at that moment)
--
-- @raise outside a task; `Cancelled` in a cancelled task. This is an await.
function Notify:notified() end

--- The op of `notified()`.
--
-- **Cancel safety.** As `notified`.
--
-- @treturn Op an op returning nothing
-- @raise on a bad self
function Notify:notified_op() end

--- A barrier (`quench.barrier`).
-- @type Barrier

--- Wait until `n` tasks wait; they are then all released.
--
-- **Cancel safety.** A waiter dropped before the release takes its arrival
-- back (the group still needs `n`). After the release its arrival counted.
--
-- * before it waits: not arrived
-- * while waiting: its arrival is taken back: the group still needs `n`
--   tasks
-- * given, not resumed: the group was released and stays released; this
--   task's arrival counted (the others are not affected); it just does not
--   see the `false`
--
-- @treturn boolean `true` for the task whose arrival released the others
-- @raise outside a task; `Cancelled` in a cancelled task. This is an await.
function Barrier:wait() end

--- The op of `wait()`.
--
-- **Cancel safety.** As `wait`: an op dropped before the release takes its
-- arrival back.
--
-- @treturn Op an op returning what `wait` returns
-- @raise on a bad self
function Barrier:wait_op() end
