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
-- connected, `EBADF: ...`)
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

--- A Unix socket server (`quench.unix.server`). `<close>` closes it (and
-- removes its socket file).
-- @type UnixServer

--- Take the next connection.
--
-- **Cancel safety.** Cancel-safe: a connection is taken only when `accept`
-- returns it.
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
