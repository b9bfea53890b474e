--- Unix domain sockets and adopting descriptors (systemd socket activation).
--
-- `quench.unix` streams have every method of a TCP stream (the same
-- buffered stream over a libuv pipe) and the same rules: an I/O failure is
-- `nil, "ENAME: message", "ENAME"`, misuse raises naming the function. A
-- name is a path, or `"@name"` for Linux's abstract namespace (no file;
-- the name goes with its last socket).
--
-- Guide: [docs/io.md](../../io.md#unix-domain-sockets).
-- @module unix

--- Listen on a Unix socket. Does not wait.
--
-- A socket file at `path` that nobody listens on (a stale file left by a
-- process that died) is replaced: listen connects to it, and a refused
-- connection means stale. A live server there gives `EADDRINUSE` (it sees
-- the probe as one connection closed at once, with no data); so does any
-- file that is not a socket, which is never removed. The server removes
-- its socket file when it closes (also at the end of `quench.run`), if the
-- file is still the one it made.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string path the path, or `"@name"` (abstract); at most 107 bytes
-- @tparam[opt] table opts `backlog` (default 511), `mode` (the file's
-- permission bits, e.g. `tonumber("660", 8)`, set before anyone can
-- connect), `read_limit`, `write_limit` (given to accepted streams)
-- @treturn ?UnixServer the server, or nil
-- @treturn ?string message (`EADDRINUSE: ...`, `EACCES: ...`, `ENOENT: ...`)
-- @treturn ?string code
-- @raise a bad path (empty, with `"\0"`, too long); an unknown option;
-- outside a runtime
-- @usage local srv = assert(quench.unix.listen("/run/app.sock", { mode = tonumber("660", 8) }))
function quench.unix.listen(path, opts) end

--- Connect to a Unix socket. Never waits: the kernel connects a Unix socket
-- at once or refuses.
--
-- **Cancel safety.** Never waits (not an await, no op).
--
-- @tparam string path the path, or `"@name"`
-- @tparam[opt] table opts `read_limit`, `write_limit`
-- @treturn ?UnixStream the stream, or nil
-- @treturn ?string message (`ENOENT: ...`, `ECONNREFUSED: ...` for a stale
-- file, `EAGAIN: ...` when the listener's backlog is full)
-- @treturn ?string code
-- @raise a bad path; an unknown option; outside a runtime
function quench.unix.connect(path, opts) end

--- Adopt a Unix socket descriptor, as `quench.adopt`, raising if it is
-- not a Unix socket.
--
-- **Cancel safety.** Never waits.
--
-- @tparam integer fd the descriptor (3 or more)
-- @tparam[opt] table opts as `quench.adopt`
-- @treturn ?UnixServer|UnixStream the server or stream, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise `quench.unix.adopt: descriptor 3 is not a Unix socket`; as
-- `quench.adopt`
function quench.unix.adopt(fd, opts) end

--- Adopt a TCP socket descriptor, as `quench.adopt`, raising if it is not
-- a TCP socket.
--
-- **Cancel safety.** Never waits.
--
-- @tparam integer fd the descriptor (3 or more)
-- @tparam[opt] table opts as `quench.adopt`
-- @treturn ?TcpServer|TcpStream the server or stream, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise `quench.tcp.adopt: descriptor 3 is not a TCP socket`; as
-- `quench.adopt`
function quench.tcp.adopt(fd, opts) end

--- Make a socket descriptor someone else opened (inherited from a parent,
-- passed by systemd) a quench object: a listening socket becomes a server,
-- a connected one a stream, TCP or Unix by its family. On success quench
-- owns the descriptor (close-on-exec and non-blocking from now on; a
-- server's gets a new number); on failure it is still the caller's.
--
-- **Cancel safety.** Never waits.
--
-- @tparam integer fd the descriptor (3 or more)
-- @tparam[opt] table opts `nodelay`, `keepalive` (TCP), `read_limit`,
-- `write_limit`
-- @treturn ?TcpServer|TcpStream|UnixServer|UnixStream the object, or nil
-- @treturn ?string message (`ENOTSOCK: ...`, `EPROTOTYPE: ...` for a
-- datagram socket, `ENOTCONN: ...` for one neither listening nor
-- connected, `EBADF: ...`, `EBUSY: ...` for a descriptor a quench object
-- of this runtime already owns)
-- @treturn ?string code
-- @raise fd 0, 1 or 2 (use `quench.stdin()`...); an unknown option;
-- outside a runtime
-- @usage local fds = quench.listen_fds(); local srv = assert(quench.adopt(fds[1]))
function quench.adopt(fd, opts) end

--- The descriptors systemd's socket activation passed this process
-- (`sd_listen_fds`): `LISTEN_PID` must be this process's pid, `LISTEN_FDS`
-- says how many, from fd 3 on; `LISTEN_FDNAMES` names them. Each is made
-- close-on-exec. The three variables are removed from the environment
-- (so a child does not take the descriptors for its own) unless
-- `keep_env`.
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt=false] boolean keep_env leave the environment as it is
-- @treturn {integer,...} the descriptors (empty when none were passed, or
-- they were meant for another process)
-- @treturn {string,...} their names, by position (missing when not given)
-- @raise on a malformed `LISTEN_PID` or `LISTEN_FDS`
function quench.listen_fds(keep_env) end

--- Open a Unix datagram socket (`AF_UNIX`, `SOCK_DGRAM`), bound to
-- `name` when given. Does not wait.
--
-- A socket file at `name` that nobody is bound to (a stale file) is
-- replaced, as `quench.unix.listen` does; a live one gives `EADDRINUSE`,
-- and so does any other file, which is never removed. The socket removes
-- its file when it closes (also at the end of `quench.run`), if the file
-- is still its own. Without a name the socket is unnamed: its datagrams
-- reach their receivers from `""`, which cannot answer.
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt] string name a path, or `"@name"` (abstract); at most 107 bytes
-- @tparam[opt] table opts `recv_queue` (datagrams kept before reading
-- pauses, default 64)
-- @treturn ?UnixDgram the socket, or nil
-- @treturn ?string message (`EADDRINUSE: ...`, `EACCES: ...`, `ENOENT: ...`)
-- @treturn ?string code
-- @raise a bad name (empty, with `"\0"`, too long); an unknown option;
-- outside a runtime
-- @usage local s = assert(quench.unix.dgram("/run/app/log.sock"))
function quench.unix.dgram(name, opts) end

--- A Unix socket server (`quench.unix.server`). `<close>` closes it (and
-- removes its socket file).
-- @type UnixServer

--- Take the next connection.
--
-- **Cancel safety.** Cancel-safe: a connection is taken only when `accept`
-- returns it.
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken: connections stay queued, in order
-- * given, not resumed: nothing taken: the connection stays first in the
--   queue
--
-- @treturn ?UnixStream the connection, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise on a closed server; outside a task; `Cancelled` in a cancelled
-- task. This is an await.
function UnixServer:accept() end

--- The op of `accept`.
--
-- **Cancel safety.** As `accept`.
--
-- @treturn Op an op returning what `accept` returns
-- @raise on a closed server
function UnixServer:accept_op() end

--- The name the server listens on: its path, or `"@name"`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn string the name
-- @raise on a closed server
function UnixServer:getsockname() end

--- Stop listening; connections accepted and not yet taken are closed; the
-- socket file is removed if it is still the server's.
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean `true`
-- @raise never (idempotent)
function UnixServer:close() end

--- A Unix socket stream (`quench.unix.stream`): every method of
-- `TcpStream` but the TCP ones (`nodelay`, `keepalive`, `close_reset`),
-- and the peer's credentials. One reader and one writer at a time.
-- @type UnixStream

--- Read, waiting as needed (formats as `TcpStream:read`).
--
-- **Cancel safety.** Cancel-safe: bytes are consumed only when the read
-- returns them; a dropped read leaves them buffered.
--
-- * before it waits: nothing read
-- * while waiting: nothing read: what arrived stays buffered for the next
--   read
-- * given, not resumed: nothing read: the bytes are consumed only when the
--   read returns them
--
-- @param[opt="l"] fmt a count, `"l"`, `"L"` or `"a"`
-- @treturn ?string the data; nil at EOF
-- @treturn ?string message
-- @treturn ?string code
-- @raise on a closed stream; a second reader; outside a task; `Cancelled`
-- in a cancelled task. This is an await.
function UnixStream:read(fmt) end

--- Whatever is buffered: at least one byte, at most `max`.
--
-- **Cancel safety.** As `read`.
--
-- * before it waits: nothing read
-- * while waiting: nothing read
-- * given, not resumed: nothing read
--
-- @tparam[opt] integer max the most bytes
-- @treturn ?string the data, or nil at EOF
-- @treturn ?string message
-- @treturn ?string code
-- @raise as `read`. This is an await.
function UnixStream:read_some(max) end

--- An iterator of `read(fmt)` for a generic `for`.
--
-- **Cancel safety.** As `read`.
--
-- @tparam[opt="l"] string fmt a read format
-- @treturn function the iterator; it raises on an I/O error
-- @raise on a closed stream
function UnixStream:lines(fmt) end

--- Write strings and numbers as one piece; returns the stream (waits only
-- while more than `write_limit` bytes are queued).
--
-- **Cancel safety.** All or nothing, as `TcpStream:write`.
--
-- * before it waits: nothing written
-- * while waiting: **nothing written** (it only waits while the queue is
--   over `write_limit`)
-- * given, not resumed: nothing written. Once `write` has returned, its
--   bytes are queued whole and go out even if the task is dropped right
--   after
--
-- @param ... strings or numbers
-- @treturn ?UnixStream the stream, or nil
-- @treturn ?string message (`EPIPE: ...`)
-- @treturn ?string code
-- @raise on a closed stream; after `shutdown`; a second writer; outside a
-- task. This is an await.
function UnixStream:write(...) end

--- Shut the write side once everything queued is written: the peer reads
-- EOF.
--
-- **Cancel safety.** A dropped shutdown may still happen.
--
-- * before it waits: nothing done
-- * while waiting: the shutdown request is libuv's: it still happens; writes
--   raise from then on
-- * given, not resumed: the same, done
--
-- @treturn ?boolean `true`, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise a second shutdown; on a closed stream; outside a task. This is
-- an await.
function UnixStream:shutdown() end

--- Close. Never waits; writes still queued are sent in the background.
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean `true`
-- @raise never (idempotent)
function UnixStream:close() end

--- The op of `read(fmt)`.
--
-- **Cancel safety.** As `read`.
--
-- @param[opt] fmt as `read`
-- @treturn Op an op returning what `read` returns
-- @raise on a closed stream; a bad format
function UnixStream:read_op(fmt) end

--- The op of `read_some(max)`.
--
-- **Cancel safety.** As `read_some`.
--
-- @tparam[opt] integer max as `read_some`
-- @treturn Op an op returning what `read_some` returns
-- @raise on a closed stream
function UnixStream:read_some_op(max) end

--- The op of `write(data)`.
--
-- **Cancel safety.** As `write`.
--
-- @tparam string data the bytes
-- @treturn Op an op returning what `write` returns
-- @raise on a closed stream
function UnixStream:write_op(data) end

--- The op of `shutdown()`.
--
-- **Cancel safety.** As `shutdown`.
--
-- @treturn Op an op returning what `shutdown` returns
-- @raise on a stream already shut down
function UnixStream:shutdown_op() end

--- Bytes read from the socket and not yet returned by a read.
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer bytes
-- @raise on a closed stream
function UnixStream:buffered() end

--- Bytes accepted by `write` and not yet handed to the kernel.
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer bytes
-- @raise on a closed stream
function UnixStream:queued() end

--- This end's name: the server's path on an accepted stream, `""` on a
-- connecting client (unnamed).
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?string the name, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise on a closed stream
function UnixStream:getsockname() end

--- The peer's name: the server's path on a client, `""` on an accepted
-- stream whose client did not bind.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?string the name, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise on a closed stream
function UnixStream:getpeername() end

--- The peer's credentials when it connected (Linux `SO_PEERCRED`): the
-- process id and its user and group ids. The kernel vouches for them, so a
-- server may authorise by them.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?table `{pid =, uid =, gid =}`, or nil
-- @treturn ?string message (`ENOTSUP: ...` where the system has none)
-- @treturn ?string code
-- @raise on a closed stream
-- @usage local cred = conn:getpeercred(); if cred.uid ~= 0 then conn:close() end
function UnixStream:getpeercred() end

--- What `read_some(max)` would return, left buffered (as `TcpStream:peek`).
--
-- **Cancel safety.** As `TcpStream:peek`.
--
-- @tparam[opt] integer max the most bytes to return
-- @treturn ?string the data, or nil at EOF
-- @treturn ?string message on an I/O error
-- @treturn ?string code
-- @raise as `TcpStream:peek`. This is an await.
function UnixStream:peek(max) end

--- The op of `peek(max)`.
--
-- **Cancel safety.** As `peek`.
--
-- @tparam[opt] integer max as `peek`
-- @treturn Op an op returning what `peek` returns
-- @raise on a closed stream
function UnixStream:peek_op(max) end

--- Wait until a read would not wait (as `TcpStream:readable`).
--
-- **Cancel safety.** As `TcpStream:readable`.
--
-- @treturn ?UnixStream the stream, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise as `TcpStream:readable`. This is an await.
function UnixStream:readable() end

--- The op of `readable()`.
--
-- **Cancel safety.** As `readable`.
--
-- @treturn Op an op returning what `readable` returns
-- @raise on a closed stream
function UnixStream:readable_op() end

--- Wait until a write would not wait (as `TcpStream:writable`).
--
-- **Cancel safety.** As `TcpStream:writable`.
--
-- @treturn ?UnixStream the stream, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise as `TcpStream:writable`. This is an await.
function UnixStream:writable() end

--- The op of `writable()`.
--
-- **Cancel safety.** As `writable`.
--
-- @treturn Op an op returning what `writable` returns
-- @raise on a closed stream
function UnixStream:writable_op() end

--- `read_some(max)` that never waits (as `TcpStream:try_read`).
--
-- **Cancel safety.** Never waits: not a cancellation point; needs no task.
--
-- @tparam[opt] integer max the most bytes
-- @treturn ?string the data; nil at EOF or when nothing is buffered
-- @treturn ?string `"EAGAIN: ..."` when nothing is buffered, or the error
-- @treturn ?string code
-- @raise as `TcpStream:try_read`
function UnixStream:try_read(max) end

--- `write(...)` that never waits (as `TcpStream:try_write`).
--
-- **Cancel safety.** Never waits: not a cancellation point; needs no task.
--
-- @param ... strings or numbers, written as one piece
-- @treturn ?UnixStream the stream; nil when nothing was taken
-- @treturn ?string `"EAGAIN: ..."`, or the stream's write error
-- @treturn ?string code
-- @raise as `TcpStream:try_write`
function UnixStream:try_write(...) end

--- A Unix datagram socket (`quench.unix.dgram`). `<close>` closes it (and
-- removes its socket file).
-- @type UnixDgram

--- Send one datagram to `name`, or to the connected peer.
--
-- Tried at once; when the receiver's queue is full the send waits, trying
-- again every 1 ms, doubling to every 50 ms (a Unix receiver that is full
-- makes the sender wait: nothing is dropped).
--
-- **Cancel safety.** A datagram goes out once or never: a send dropped
-- while it waits has sent nothing (the wait ends the moment it is sent).
--
-- * before it waits: nothing sent
-- * while waiting: nothing sent: the datagram is tried only inside the wait
--   and the send returns as soon as it went out
-- * given, not resumed: sent, once
--
-- @tparam string data the datagram
-- @tparam[opt] string name a path or `"@name"`; nil: the connected peer
-- @treturn ?boolean `true`, or nil
-- @treturn ?string message (`ENOENT: ...`, `ECONNREFUSED: ...` for a stale
-- file, `ENOTCONN: ...`, `EMSGSIZE: ...`)
-- @treturn ?string code
-- @raise on a closed socket; a bad name; outside a task; `Cancelled` in a
-- cancelled task. This is an await.
function UnixDgram:send(data, name) end

--- The op of `send`.
--
-- **Cancel safety.** As `send`.
--
-- @tparam string data the datagram
-- @tparam[opt] string name as `send`
-- @treturn Op an op returning what `send` returns
-- @raise on a closed socket; a bad name
function UnixDgram:send_op(data, name) end

--- Receive one datagram.
--
-- **Cancel safety.** Cancel-safe, as `UdpSocket:recv`.
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken: datagrams that arrive stay queued, in
--   order
-- * given, not resumed: **nothing lost**: a datagram already handed to the
--   dropped `recv` goes back to the front of the queue, for the next `recv`
--   (`spec/unix_dgram_spec.lua` drops one in a select and in an aborted task)
--
-- @tparam[opt] integer max the most bytes to return (the rest of the
-- datagram is dropped)
-- @treturn ?string the data, or nil
-- @treturn string the sender's name (`""`: unnamed), or an error message
-- @treturn ?string nil, or an error code
-- @raise on a closed socket; outside a task; `Cancelled` in a cancelled
-- task. This is an await.
function UnixDgram:recv(max) end

--- The op of `recv`.
--
-- **Cancel safety.** As `recv`.
--
-- @tparam[opt] integer max as `recv`
-- @treturn Op an op returning what `recv` returns
-- @raise on a closed socket
function UnixDgram:recv_op(max) end

--- Bind an unnamed socket to a name (a stale file there is replaced, as
-- `quench.unix.dgram` does).
--
-- **Cancel safety.** Never waits.
--
-- @tparam string name a path or `"@name"`
-- @treturn ?boolean `true`, or nil
-- @treturn ?string message (`EADDRINUSE: ...`, `EINVAL: ...` when already bound)
-- @treturn ?string code
-- @raise on a closed socket; a bad name
function UnixDgram:bind(name) end

--- Connect: `send` without a name goes to `name`, and `recv` hears only
-- it. Without a name, the association is dissolved.
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt] string name a path or `"@name"`
-- @treturn ?boolean `true`, or nil
-- @treturn ?string message (`ENOENT: ...`, `ECONNREFUSED: ...`)
-- @treturn ?string code
-- @raise on a closed socket; a bad name
function UnixDgram:connect(name) end

--- The socket's name: a path, `"@name"`, or `""` when unnamed.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?string the name, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise on a closed socket
function UnixDgram:getsockname() end

--- The connected peer's name.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?string the name, or nil
-- @treturn ?string message (`ENOTCONN: ...`)
-- @treturn ?string code
-- @raise on a closed socket
function UnixDgram:getpeername() end

--- Close (and remove the socket's file if it is still its own); receives
-- waiting get `nil, "ECANCELED: ..."`. Idempotent.
--
-- **Cancel safety.** Never waits.
--
-- @raise never
function UnixDgram:close() end

--- Whether the socket was closed.
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean closed or not
-- @raise never
function UnixDgram:is_closed() end
