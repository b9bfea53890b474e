--- I/O: TCP, UDP, DNS, files, child processes, pipes and standard streams.
--
-- *Since quench 0.2.0.* One set of rules, luv's
-- and Lua's io library's:
--
-- * an I/O failure is a result: `nil, "ENAME: message", "ENAME"` with
--   libuv's error name; misuse (a wrong argument, a closed object, two
--   readers at once) raises an error naming the function;
-- * every waiting method `x` has an `x_op` form;
-- * an object belongs to the `quench.run` that made it: the run closes what
--   is still open, and afterwards every method but `close` raises;
-- * `close` never waits and is idempotent; `<close>` calls it; garbage
--   collection closes an object too (resource release), but never cancels a
--   task.
--
-- Guide, with a cancel-safety table per area: [docs/io.md](../../io.md).
-- @module io

--- Listen for TCP connections. Does not wait.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @tparam ?string host a numeric address (`"127.0.0.1"`, `"::1"`, `"::"`)
-- or a name resolved at once; nil or `"*"` for every IPv4 address
-- @tparam integer port 0 picks a free port (see `getsockname`)
-- @tparam[opt] table opts `nodelay`, `keepalive`, `read_limit`,
-- `write_limit`, `linger` (for accepted streams), `backlog` (default 511),
-- `reuseaddr` (default true), `reuseport`, `ipv6only`; an unknown key raises
-- @treturn ?TcpServer the server, or nil
-- @treturn ?string message (`EADDRINUSE: ...`)
-- @treturn ?string code
-- @raise `quench.tcp.listen: unknown option ...`; a bad port; outside a runtime.
function quench.tcp.listen(host, port, opts) end

--- Connect to a TCP server (a name is resolved on the thread pool, then
-- each address is tried in turn).
--
-- **Cancel safety.** A dropped connect closes its half-made socket (a
-- lookup in flight is cancelled or freed): no stream is returned and
-- nothing leaks; the peer may see a connection that ends at once.
--
-- * before it waits: nothing done
-- * while waiting: the half-made socket is closed (a name lookup in flight
--   is cancelled, or finishes and is freed); no stream is returned, nothing
--   leaks. The peer may see a connection that ends at once
-- * given, not resumed: the connected stream is closed; the peer sees EOF
--
-- @tparam string host a name or address
-- @tparam integer port the port
-- @tparam[opt] table opts `nodelay`, `keepalive`, `read_limit`, `write_limit`,
-- `linger` (seconds, 0..86400: see `TcpStream:linger`), `local_host` (a
-- numeric address to leave from), `local_port` (0..65535, default 0: any)
-- @treturn ?TcpStream the connected stream, or nil
-- @treturn ?string message (`ECONNREFUSED: ...`, `EAI_NONAME: ...`)
-- @treturn ?string code
-- @raise a bad option; outside a task; `Cancelled` in a cancelled task.
-- This is an await.
function quench.tcp.connect(host, port, opts) end

--- The op of `connect`.
--
-- **Cancel safety.** As `connect`.
--
-- * before it waits: nothing done
-- * while waiting: the half-made socket is closed (a name lookup in flight
--   is cancelled, or finishes and is freed); no stream is returned, nothing
--   leaks. The peer may see a connection that ends at once
-- * given, not resumed: the connected stream is closed; the peer sees EOF
--
-- @tparam string host a name or address
-- @tparam integer port the port
-- @tparam[opt] table opts as `connect`
-- @treturn Op an op returning what `connect` returns
-- @raise a bad option
function quench.tcp.connect_op(host, port, opts) end

--- Bind a UDP socket. Does not wait.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @tparam ?string host an address or a name resolved at once; nil or
-- `"*"` for every IPv4 address
-- @tparam integer port 0 picks a free port
-- @tparam[opt] table opts `reuseaddr`, `ipv6only`, `recv_queue` (datagrams
-- kept before reading pauses, default 64)
-- @treturn ?UdpSocket the socket, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise a bad port; outside a runtime.
function quench.udp.bind(host, port, opts) end

--- Resolve a host name on the thread pool (`uv_getaddrinfo`).
--
-- **Cancel safety.** Safe: a lookup changes nothing. A dropped one still
-- queued is cancelled; one already running finishes on its thread and its
-- result is freed.
--
-- * before it waits: nothing done
-- * while waiting: safe: a lookup changes nothing. Still queued:
--   `uv_cancel`ed; already running: it finishes on its pool thread and its
--   result is freed by libuv's callback (`quench.run` waits for it)
-- * given, not resumed: safe: the result is freed
--
-- @tparam string host the name or address
-- @tparam[opt] table opts `family` (`"inet"`, `"inet6"`), `socktype`
-- (`"stream"`, the default, `"dgram"`, `"any"`), `port` (a number or a
-- service name), `numeric`, `canonname`, `addrconfig`
-- @treturn ?{table,...} a list of `{addr, family, port, socktype,
-- protocol}` (`canonname` on the first when asked for), or nil
-- @treturn ?string message (`EAI_NONAME: ...`)
-- @treturn ?string code
-- @raise a bad option; a host with a zero byte; outside a task;
-- `Cancelled` in a cancelled task. This is an await.
function quench.dns.getaddrinfo(host, opts) end

--- The op of `getaddrinfo`.
--
-- **Cancel safety.** As `getaddrinfo`.
--
-- * before it waits: nothing done
-- * while waiting: safe: a lookup changes nothing. Still queued:
--   `uv_cancel`ed; already running: it finishes on its pool thread and its
--   result is freed by libuv's callback (`quench.run` waits for it)
-- * given, not resumed: safe: the result is freed
--
-- @tparam string host the name
-- @tparam[opt] table opts as `getaddrinfo`
-- @treturn Op an op returning what `getaddrinfo` returns
-- @raise a bad option
function quench.dns.getaddrinfo_op(host, opts) end

--- Open a file (on the thread pool).
--
-- **Cancel safety.** A dropped open returns no file; if the open happens
-- anyway its descriptor is closed: nothing leaks (a file created by `"w"`
-- stays created).
--
-- * before it waits: nothing done
-- * while waiting: no file is returned; if the open happens anyway its
--   descriptor is closed: nothing leaks (a file created by `"w"` stays
--   created)
-- * given, not resumed: the descriptor is closed; nothing leaks
--
-- @tparam string path the path
-- @tparam[opt="r"] string|integer flags `"r"`, `"r+"`, `"w"`, `"w+"`,
-- `"a"`, `"a+"`, with `"x"`, `"s"`, `"b"`; or `UV_FS_O_*` bits
-- @tparam[opt=438] integer mode for a new file (0666), before the umask
-- @treturn ?File the file, or nil
-- @treturn ?string message (`ENOENT: ...`)
-- @treturn ?string code
-- @raise bad flags; a path with a zero byte; outside a task; `Cancelled`
-- in a cancelled task. This is an await.
function quench.fs.open(path, flags, mode) end

--- The op of `open`.
--
-- **Cancel safety.** As `open`.
--
-- * before it waits: nothing done
-- * while waiting: no file is returned; if the open happens anyway its
--   descriptor is closed: nothing leaks (a file created by `"w"` stays
--   created)
-- * given, not resumed: the descriptor is closed; nothing leaks
--
-- @tparam string path the path
-- @param[opt] flags as `open`
-- @param[opt] mode as `open`
-- @treturn Op an op returning what `open` returns
-- @raise as `open` for bad arguments
function quench.fs.open_op(path, flags, mode) end

--- Information about a path (follows symbolic links).
--
-- **Cancel safety.** Safe: nothing changes.
--
-- * before it waits: nothing done
-- * while waiting: safe: nothing changes
-- * given, not resumed: safe
--
-- @tparam string path the path
-- @treturn ?table `type` (`"file"`, `"directory"`, `"link"`, ...), `size`,
-- `mode`, `perm`, `uid`, `gid`, `dev`, `ino`, `nlink`, `rdev`, `blksize`,
-- `blocks`, `atime`, `mtime`, `ctime`, `birthtime`; or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise a bad path; outside a task; `Cancelled` in a cancelled task. This
-- is an await.
function quench.fs.stat(path) end

--- The op of `stat`.
--
-- **Cancel safety.** As `stat`.
--
-- * before it waits: nothing done
-- * while waiting: safe: nothing changes
-- * given, not resumed: safe
--
-- @tparam string path the path
-- @treturn Op an op returning what `stat` returns
-- @raise a bad path
function quench.fs.stat_op(path) end

--- The entries of a directory, sorted by name, without `.` and `..`.
--
-- **Cancel safety.** Safe: nothing changes.
--
-- * before it waits: nothing done
-- * while waiting: safe: nothing changes
-- * given, not resumed: safe
--
-- @tparam string path the directory
-- @treturn ?{table,...} a list of `{name, type}`, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise a bad path; outside a task; `Cancelled` in a cancelled task. This
-- is an await.
function quench.fs.readdir(path) end

--- The op of `readdir`.
--
-- **Cancel safety.** As `readdir`.
--
-- * before it waits: nothing done
-- * while waiting: safe: nothing changes
-- * given, not resumed: safe
--
-- @tparam string path the directory
-- @treturn Op an op returning what `readdir` returns
-- @raise a bad path
function quench.fs.readdir_op(path) end

--- Remove a file.
--
-- **Cancel safety.** A dropped unlink may or may not have happened (stat
-- to know).
--
-- * before it waits: nothing done
-- * while waiting: may or may not have happened (stat to know)
-- * given, not resumed: happened
--
-- @tparam string path the file
-- @treturn ?boolean `true`, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise a bad path; outside a task; `Cancelled` in a cancelled task. This
-- is an await.
function quench.fs.unlink(path) end

--- The op of `unlink`.
--
-- **Cancel safety.** As `unlink`.
--
-- * before it waits: nothing done
-- * while waiting: may or may not have happened (stat to know)
-- * given, not resumed: happened
--
-- @tparam string path the file
-- @treturn Op an op returning what `unlink` returns
-- @raise a bad path
function quench.fs.unlink_op(path) end

--- Remove an empty directory.
--
-- **Cancel safety.** A dropped rmdir may or may not have happened.
--
-- * before it waits: nothing done
-- * while waiting: may or may not have happened (stat to know)
-- * given, not resumed: happened
--
-- @tparam string path the directory
-- @treturn ?boolean `true`, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise a bad path; outside a task; `Cancelled` in a cancelled task. This
-- is an await.
function quench.fs.rmdir(path) end

--- The op of `rmdir`.
--
-- **Cancel safety.** As `rmdir`.
--
-- * before it waits: nothing done
-- * while waiting: may or may not have happened (stat to know)
-- * given, not resumed: happened
--
-- @tparam string path the directory
-- @treturn Op an op returning what `rmdir` returns
-- @raise a bad path
function quench.fs.rmdir_op(path) end

--- Rename a file or directory.
--
-- **Cancel safety.** A dropped rename may or may not have happened.
--
-- * before it waits: nothing done
-- * while waiting: may or may not have happened (stat to know)
-- * given, not resumed: happened
--
-- @tparam string old the current path
-- @tparam string new the new path
-- @treturn ?boolean `true`, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise a bad path; outside a task; `Cancelled` in a cancelled task. This
-- is an await.
function quench.fs.rename(old, new) end

--- The op of `rename`.
--
-- **Cancel safety.** As `rename`.
--
-- * before it waits: nothing done
-- * while waiting: may or may not have happened (stat to know)
-- * given, not resumed: happened
--
-- @tparam string old the current path
-- @tparam string new the new path
-- @treturn Op an op returning what `rename` returns
-- @raise a bad path
function quench.fs.rename_op(old, new) end

--- Make a directory.
--
-- **Cancel safety.** A dropped mkdir may or may not have happened.
--
-- * before it waits: nothing done
-- * while waiting: may or may not have happened (stat to know)
-- * given, not resumed: happened
--
-- @tparam string path the directory
-- @tparam[opt=511] integer mode (0777), before the umask
-- @treturn ?boolean `true`, or nil
-- @treturn ?string message (`EEXIST: ...`)
-- @treturn ?string code
-- @raise a bad path; outside a task; `Cancelled` in a cancelled task. This
-- is an await.
function quench.fs.mkdir(path, mode) end

--- The op of `mkdir`.
--
-- **Cancel safety.** As `mkdir`.
--
-- * before it waits: nothing done
-- * while waiting: may or may not have happened (stat to know)
-- * given, not resumed: happened
--
-- @tparam string path the directory
-- @tparam[opt] integer mode as `mkdir`
-- @treturn Op an op returning what `mkdir` returns
-- @raise a bad path
function quench.fs.mkdir_op(path, mode) end

--- The whole content of a file (open, read, close: one piece of pool work).
--
-- **Cancel safety.** Safe: a dropped one leaves no descriptor behind.
--
-- * before it waits: nothing done
-- * while waiting: safe
-- * given, not resumed: safe
--
-- @tparam string path the file
-- @treturn ?string the content, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise a bad path; outside a task; `Cancelled` in a cancelled task. This
-- is an await.
function quench.fs.read_file(path) end

--- The op of `read_file`.
--
-- **Cancel safety.** As `read_file`.
--
-- * before it waits: nothing done
-- * while waiting: safe
-- * given, not resumed: safe
--
-- @tparam string path the file
-- @treturn Op an op returning what `read_file` returns
-- @raise a bad path
function quench.fs.read_file_op(path) end

--- Create or truncate a file and write `data` to it (one piece of pool work).
--
-- **Cancel safety.** Not safe: a dropped one may leave the file truncated
-- or partly written (write to a temporary name, then `rename`, for all or
-- nothing).
--
-- * before it waits: nothing done
-- * while waiting: not safe: the file may be left truncated or partly
--   written (write to a temporary name, then `rename`, for all or nothing)
-- * given, not resumed: written, whole
--
-- @tparam string path the file
-- @tparam string data the content
-- @treturn ?boolean `true`, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise a bad path; outside a task; `Cancelled` in a cancelled task. This
-- is an await.
function quench.fs.write_file(path, data) end

--- The op of `write_file`.
--
-- **Cancel safety.** As `write_file`.
--
-- * before it waits: nothing done
-- * while waiting: not safe: the file may be left truncated or partly
--   written (write to a temporary name, then `rename`, for all or nothing)
-- * given, not resumed: written, whole
--
-- @tparam string path the file
-- @tparam string data the content
-- @treturn Op an op returning what `write_file` returns
-- @raise a bad path
function quench.fs.write_file_op(path, data) end

--- Start a child process. Does not wait.
--
-- **Cancel safety.** Never waits. Kill on drop: closing the process (also
-- by `<close>`, when its task is aborted, and at the end of the runtime)
-- sends SIGKILL to a child still running and reaps it, unless
-- `kill_on_drop = false`. Garbage collection is never a drop.
--
-- @tparam string file the program (searched on PATH)
-- @tparam[opt] table opts `args` (a list), `env` (a list is the whole
-- environment; string keys override the inherited one, false removes),
-- `cwd`, `stdin`, `stdout`, `stderr` (`"pipe"`, `"inherit"` or
-- `"ignore"`), `kill_on_drop` (default true); an unknown key raises
-- @treturn ?Process the process, or nil
-- @treturn ?string message (`ENOENT: ...`)
-- @treturn ?string code
-- @raise `quench.process.spawn: unknown option ...`; bad stdio values;
-- `quench.process.spawn: argument #1 (file) must be a string, got table`;
-- a zero byte in the file, an argument, the environment or cwd
-- (`quench.process.spawn: opts.args[2] contains a zero byte ...`);
-- outside a runtime.
function quench.process.spawn(file, opts) end

--- The runtime's stream on standard input (made once per runtime).
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?Pipe the stream, or nil
-- @treturn ?string `ENOTSUP: ...` when fd 0 is a file or a character
-- device, which a stream cannot wrap (use `io.stdin`)
-- @treturn ?string code
-- @raise outside a runtime
function quench.stdin() end

--- The runtime's stream on standard output.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?Pipe the stream, or nil
-- @treturn ?string message, as `quench.stdin`
-- @treturn ?string code
-- @raise outside a runtime
function quench.stdout() end

--- The runtime's stream on standard error.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?Pipe the stream, or nil
-- @treturn ?string message, as `quench.stdin`
-- @treturn ?string code
-- @raise outside a runtime
function quench.stderr() end

--- A TCP server (`quench.tcp.server`). Connections are accepted into a
-- queue whether or not a task waits in `accept`. `<close>` closes it.
-- @type TcpServer

--- Take the next connection.
--
-- **Cancel safety.** Cancel-safe: a connection is taken only when `accept`
-- returns it; after a drop it stays first in the queue.
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken: connections stay queued, in order
-- * given, not resumed: nothing taken: the connection stays first in the
--   queue
--
-- @treturn ?TcpStream the connection, or nil
-- @treturn ?string message (`EMFILE: ...`; `ECANCELED: ...` when another
-- task closed the server)
-- @treturn ?string code
-- @raise on a closed server or one whose runtime ended; outside a task;
-- `Cancelled` in a cancelled task. This is an await.
function TcpServer:accept() end

--- The op of `accept`.
--
-- **Cancel safety.** As `accept`.
--
-- @treturn Op an op returning what `accept` returns
-- @raise on a closed server
function TcpServer:accept_op() end

--- The address the server listens on.
--
-- **Cancel safety.** Never waits.
--
-- @treturn string host
-- @treturn integer port
-- @raise on a closed server
function TcpServer:getsockname() end

--- Stop listening; connections accepted and not yet taken are closed.
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean `true`
-- @raise never (idempotent)
function TcpServer:close() end

--- A TCP stream (`quench.tcp.stream`), with Lua's io read formats.
-- `<close>` closes it. One reader and one writer at a time.
-- @type TcpStream

--- Read, waiting as needed.
--
-- **Cancel safety.** Cancel-safe: bytes are consumed only when the read
-- returns them; a dropped read leaves them buffered for the next one.
--
-- * before it waits: nothing read
-- * while waiting: nothing read: what arrived stays buffered for the next
--   read
-- * given, not resumed: nothing read: the bytes are consumed only when the
--   read returns them
--
-- @tparam[opt="l"] integer|string fmt a count (exactly n bytes, fewer only
-- at EOF), `"l"` (a line without `"\n"`), `"L"` (with it) or `"a"`
-- (everything until EOF)
-- @treturn ?string the data; nil at EOF (`"a"` gives `""`)
-- @treturn ?string message on an I/O error (`ECONNRESET: ...`)
-- @treturn ?string code
-- @raise on a closed stream; a second reader; outside a task; `Cancelled`
-- in a cancelled task. This is an await.
function TcpStream:read(fmt) end

--- Whatever is buffered: at least one byte, at most `max`.
--
-- **Cancel safety.** As `read`.
--
-- * before it waits: nothing read
-- * while waiting: nothing read
-- * given, not resumed: nothing read
--
-- @tparam[opt] integer max the most bytes to return
-- @treturn ?string the data, or nil at EOF
-- @treturn ?string message on an I/O error
-- @treturn ?string code
-- @raise as `read`. This is an await.
function TcpStream:read_some(max) end

--- Whatever `read_some(max)` would return, left buffered: the next read
-- returns the same bytes. Waits until at least one byte is buffered.
--
-- **Cancel safety.** Nothing is ever consumed: a dropped peek loses nothing.
--
-- * before it waits: nothing read
-- * while waiting: nothing read
-- * given, not resumed: nothing read (a peek never consumes)
--
-- @tparam[opt] integer max the most bytes to return
-- @treturn ?string the data, or nil at EOF
-- @treturn ?string message on an I/O error
-- @treturn ?string code
-- @raise on a closed stream; a second reader (a peek is a reader); outside a
-- task; `Cancelled` in a cancelled task. This is an await.
function TcpStream:peek(max) end

--- The op of `peek(max)`.
--
-- **Cancel safety.** As `peek`.
--
-- @tparam[opt] integer max as `peek`
-- @treturn Op an op returning what `peek` returns
-- @raise on a closed stream
function TcpStream:peek_op(max) end

--- Wait until a `read_some` would not wait (bytes are buffered, or EOF or
-- an error is there to report); reads nothing.
--
-- **Cancel safety.** Nothing moves: a dropped `readable` changes nothing.
--
-- * before it waits: nothing done
-- * while waiting: nothing done: it moves no data
-- * given, not resumed: nothing done
--
-- @treturn ?boolean `true`, or nil, `"ECANCELED: ..."`, `"ECANCELED"` when
-- the stream is closed while it waits
-- @raise on a closed stream; a second reader; outside a task; `Cancelled` in
-- a cancelled task. This is an await.
function TcpStream:readable() end

--- The op of `readable()`.
--
-- **Cancel safety.** As `readable`.
--
-- @treturn Op an op returning what `readable` returns
-- @raise on a closed stream
function TcpStream:readable_op() end

--- Wait until a `write` would not wait (at most `write_limit` bytes are
-- queued, or a write would fail at once); writes nothing.
--
-- **Cancel safety.** Nothing moves: a dropped `writable` changes nothing.
--
-- * before it waits: nothing done
-- * while waiting: nothing done: it moves no data
-- * given, not resumed: nothing done
--
-- @treturn ?boolean `true`, or nil, `"ECANCELED: ..."`, `"ECANCELED"` when
-- the stream is closed while it waits
-- @raise on a closed stream; after `shutdown`; a second writer; outside a
-- task; `Cancelled` in a cancelled task. This is an await.
function TcpStream:writable() end

--- The op of `writable()`.
--
-- **Cancel safety.** As `writable`.
--
-- @treturn Op an op returning what `writable` returns
-- @raise on a closed stream
function TcpStream:writable_op() end

--- `read_some(max)` that never waits.
--
-- **Cancel safety.** Never waits: not a cancellation point; needs no task.
--
-- @tparam[opt] integer max the most bytes to return
-- @treturn ?string the data; nil at EOF
-- @treturn ?string `"EAGAIN: resource temporarily unavailable"` when
-- nothing is buffered, or an I/O error
-- @treturn ?string code (`"EAGAIN"`, ...)
-- @raise on a closed stream; while another read waits
function TcpStream:try_read(max) end

--- `write(...)` that never waits: all of it is taken (written or queued),
-- or nothing while more than `write_limit` bytes are queued.
--
-- **Cancel safety.** Never waits: not a cancellation point; needs no task.
--
-- @param ... strings or numbers, written as one piece
-- @treturn ?TcpStream the stream; nil when nothing was taken
-- @treturn ?string `"EAGAIN: resource temporarily unavailable"`, or the
-- stream's write error
-- @treturn ?string code
-- @raise on a closed stream; after `shutdown`; while another write waits
function TcpStream:try_write(...) end

--- An iterator of `read(fmt)` for a generic `for`.
--
-- **Cancel safety.** As `read` (each step is a read).
--
-- @tparam[opt="l"] string fmt a read format
-- @treturn function the iterator; it raises on an I/O error
-- @raise on a closed stream
function TcpStream:lines(fmt) end

--- Write strings and numbers as one piece; returns the stream. Waits only
-- while more than `write_limit` bytes are queued (backpressure).
--
-- **Cancel safety.** All or nothing: a dropped write wrote nothing; once
-- `write` returned, its bytes are queued whole and go out even if the task
-- is dropped right after.
--
-- * before it waits: nothing written
-- * while waiting: **nothing written** (it only waits while the queue is
--   over `write_limit`)
-- * given, not resumed: nothing written. Once `write` has returned, its
--   bytes are queued whole and go out even if the task is dropped right
--   after
--
-- @param ... strings or numbers
-- @treturn ?TcpStream the stream, or nil
-- @treturn ?string message (`EPIPE: ...`; the first write error is
-- returned by every later write)
-- @treturn ?string code
-- @raise on a closed stream; after `shutdown`; a second writer; outside a
-- task; `Cancelled` in a cancelled task. This is an await.
function TcpStream:write(...) end

--- Shut the write side once everything queued is written: the peer reads
-- EOF; this end can still read. On a connection the peer has reset it
-- returns `true` (nothing is left to shut, as in tokio), unless a queued
-- write failed: then that write's error.
--
-- **Cancel safety.** A dropped shutdown may still happen (the request is
-- libuv's); writes raise from then on.
--
-- * before it waits: nothing done
-- * while waiting: the shutdown request is libuv's: it still happens (the
--   peer sees EOF once the queue is written); writes raise from then on
-- * given, not resumed: the same, done
--
-- @treturn ?boolean `true`, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise a second shutdown; on a closed stream; outside a task. This is
-- an await.
function TcpStream:shutdown() end

--- Close. Never waits; writes still queued are sent in the background
-- while the peer takes them. Once the peer has taken nothing for the
-- stream's `linger` (default 30 s) the queue is dropped and the connection
-- reset, so a peer that stopped reading cannot hold the descriptor.
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean `true`
-- @raise never (idempotent)
function TcpStream:close() end

--- Close at once with a TCP RST, dropping what is queued: the peer gets
-- `ECONNRESET`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean `true`
-- @raise never
function TcpStream:close_reset() end

--- The op of `read(fmt)`.
--
-- **Cancel safety.** As `read`.
--
-- @param[opt] fmt as `read`
-- @treturn Op an op returning what `read` returns
-- @raise on a closed stream; a bad format
function TcpStream:read_op(fmt) end

--- The op of `read_some(max)`.
--
-- **Cancel safety.** As `read_some`.
--
-- @tparam[opt] integer max as `read_some`
-- @treturn Op an op returning what `read_some` returns
-- @raise on a closed stream
function TcpStream:read_some_op(max) end

--- The op of `write(data)`.
--
-- **Cancel safety.** As `write`.
--
-- @tparam string data the bytes
-- @treturn Op an op returning what `write` returns
-- @raise on a closed stream
function TcpStream:write_op(data) end

--- The op of `shutdown()`.
--
-- **Cancel safety.** As `shutdown`.
--
-- @treturn Op an op returning what `shutdown` returns
-- @raise on a stream already shut down
function TcpStream:shutdown_op() end

--- This end's address.
--
-- **Cancel safety.** Never waits.
--
-- @treturn string host
-- @treturn integer port
-- @raise on a closed stream
function TcpStream:getsockname() end

--- The peer's address.
--
-- **Cancel safety.** Never waits.
--
-- @treturn string host
-- @treturn integer port
-- @raise on a closed stream
function TcpStream:getpeername() end

--- Set TCP_NODELAY.
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt=true] boolean on on or off
-- @treturn ?boolean `true`, or nil, message, code
-- @raise on a closed stream
function TcpStream:nodelay(on) end

--- Set TCP keepalive.
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt=true] boolean on on or off
-- @tparam[opt=60] number delay seconds idle before the first probe
-- @treturn ?boolean `true`, or nil, message, code
-- @raise on a closed stream; a bad delay
function TcpStream:keepalive(on, delay) end

--- Set how long a `close` with writes queued waits for the peer to take
-- some of them before it drops them and resets the connection (real time,
-- whatever the runtime's clock). A peer still reading, however slowly, gets
-- everything; one that reads nothing holds the socket at most this long
-- after `close` (twice this if it stopped mid-queue). 0: `close` drops a
-- queue at once, with a reset. Default 30 s, or the `linger` option.
--
-- **Cancel safety.** Never waits.
--
-- @tparam number seconds 0..86400
-- @treturn boolean `true`
-- @raise `quench.tcp.stream:linger: seconds must be a number in 0..86400`;
-- on a closed stream
function TcpStream:linger(seconds) end

--- Bytes read from the socket and not yet returned by a read.
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer bytes
-- @raise on a closed stream
function TcpStream:buffered() end

--- Bytes accepted by `write` and not yet handed to the kernel.
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer bytes
-- @raise on a closed stream
function TcpStream:queued() end

--- A UDP socket (`quench.udp`). `<close>` closes it.
-- @type UdpSocket

--- Send one datagram.
--
-- **Cancel safety.** A datagram goes out whole or not at all, never twice;
-- a send dropped while it waits for the socket may still go out.
--
-- * before it waits: nothing sent
-- * while waiting: the datagram may still go out (the request is libuv's and
--   owns a copy): whole and once, or not at all
-- * given, not resumed: sent, once
--
-- @tparam string data the datagram
-- @tparam string host a numeric address or `"localhost"`
-- @tparam integer port the port
-- @treturn ?boolean `true`, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise on a closed socket; a bad address; outside a task; `Cancelled`
-- in a cancelled task. This is an await.
function UdpSocket:send(data, host, port) end

--- The op of `send`.
--
-- **Cancel safety.** As `send`.
--
-- @tparam string data the datagram
-- @tparam string host the address
-- @tparam integer port the port
-- @treturn Op an op returning what `send` returns
-- @raise on a closed socket
function UdpSocket:send_op(data, host, port) end

--- Receive one datagram.
--
-- **Cancel safety.** Cancel-safe: a datagram is taken only when `recv`
-- returns it; one already handed to a dropped recv goes back to the front
-- of the queue.
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken: datagrams that arrive stay queued, in
--   order
-- * given, not resumed: **nothing lost**: a datagram already handed to the
--   dropped `recv` goes back to the front of the queue, for the next `recv`
--   (`spec/udp_spec.lua` drops one in a select and in an aborted task)
--
-- @tparam[opt] integer max the most bytes to return (the rest of the
-- datagram is dropped)
-- @treturn ?string the data, or nil
-- @treturn string|nil the sender's host, or an error message
-- @treturn integer|string|nil the sender's port, or an error code
-- @raise on a closed socket; outside a task; `Cancelled` in a cancelled
-- task. This is an await.
function UdpSocket:recv(max) end

--- The op of `recv`.
--
-- **Cancel safety.** As `recv`.
--
-- @tparam[opt] integer max as `recv`
-- @treturn Op an op returning what `recv` returns
-- @raise on a closed socket
function UdpSocket:recv_op(max) end

--- The address the socket is bound to.
--
-- **Cancel safety.** Never waits.
--
-- @treturn string host
-- @treturn integer port
-- @raise on a closed socket
function UdpSocket:getsockname() end

--- Close; receives waiting get `nil, "ECANCELED: ..."`. Idempotent.
--
-- **Cancel safety.** Never waits.
--
-- @raise never
function UdpSocket:close() end

--- Whether the socket was closed.
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean closed or not
-- @raise never
function UdpSocket:is_closed() end

--- A file (`quench.file`), every request on the thread pool. `<close>`
-- closes it.
-- @type File

--- Read up to `n` bytes, at the position or at `offset` (pread: the
-- position does not move).
--
-- **Cancel safety.** With an offset: safe (nothing moves). Without: not
-- safe once started: the position has moved past bytes nobody gets.
--
-- * before it waits: nothing read
-- * while waiting: with an offset: **safe**, a pread moves nothing and the
--   bytes are read again next time. Without an offset: **not safe once
--   started**: the file position has moved past bytes nobody gets (use an
--   offset where that matters)
-- * given, not resumed: with an offset: safe, as while waiting; without one:
--   not safe, the bytes are lost
--
-- @tparam integer n bytes (at most 1 GiB)
-- @tparam[opt] integer offset where to read
-- @treturn ?string the bytes; nil at the end of the file
-- @treturn ?string message
-- @treturn ?string code
-- @raise on a closed file; outside a task; `Cancelled` in a cancelled task.
-- This is an await.
function File:read(n, offset) end

--- The op of `read`.
--
-- **Cancel safety.** As `read`.
--
-- @tparam integer n bytes
-- @tparam[opt] integer offset as `read`
-- @treturn Op an op returning what `read` returns
-- @raise on a closed file
function File:read_op(n, offset) end

--- Write `data` at the position or at `offset`; returns once every byte
-- is written.
--
-- **Cancel safety.** Not safe once started: some or all of the bytes may
-- be written.
--
-- * before it waits: nothing written
-- * while waiting: **not safe once started**: some or all of the bytes may
--   be written
-- * given, not resumed: written, whole
--
-- @tparam string data the bytes
-- @tparam[opt] integer offset where to write
-- @treturn ?File the file, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise on a closed file; outside a task; `Cancelled` in a cancelled task.
-- This is an await.
function File:write(data, offset) end

--- The op of `write`.
--
-- **Cancel safety.** As `write`.
--
-- @tparam string data the bytes
-- @tparam[opt] integer offset as `write`
-- @treturn Op an op returning what `write` returns
-- @raise on a closed file
function File:write_op(data, offset) end

--- Information about the open file, as `quench.fs.stat`.
--
-- **Cancel safety.** Safe: nothing changes.
--
-- * before it waits: nothing done
-- * while waiting: safe: nothing changes
-- * given, not resumed: safe
--
-- @treturn ?table the information, or nil, message, code
-- @raise on a closed file; outside a task. This is an await.
function File:stat() end

--- The op of `stat`.
--
-- **Cancel safety.** As `stat`.
--
-- @treturn Op an op returning what `stat` returns
-- @raise on a closed file
function File:stat_op() end

--- Flush the file to the disk (fsync).
--
-- **Cancel safety.** A dropped sync may or may not have happened.
--
-- * before it waits: nothing done
-- * while waiting: may or may not have happened (stat to know)
-- * given, not resumed: happened
--
-- @treturn ?boolean `true`, or nil, message, code
-- @raise on a closed file; outside a task. This is an await.
function File:sync() end

--- The op of `sync`.
--
-- **Cancel safety.** As `sync`.
--
-- @treturn Op an op returning what `sync` returns
-- @raise on a closed file
function File:sync_op() end

--- Close the file. Never waits: the descriptor is closed at once, or when
-- the last request still running on it ends.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?boolean `true`, or nil, message, code from close(2)
-- @raise never (idempotent)
function File:close() end

--- The descriptor.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?integer the descriptor, or nil once closed
-- @raise never
function File:fd() end

--- A child process (`quench.process`). `p.stdin`, `p.stdout`, `p.stderr`
-- are its Pipe streams for `"pipe"` stdio (else nil). `<close>` closes it
-- (killing a child still running unless `kill_on_drop = false`).
-- @type Process

--- Wait for the child to exit.
--
-- **Cancel safety.** Cancel-safe: a dropped wait takes nothing and never
-- kills the child; the exit status stays for the next wait.
--
-- * before it waits: nothing done
-- * while waiting: **safe**: waiting takes nothing (the status stays with
--   the process), and dropping a wait never kills the child
-- * given, not resumed: safe: the next wait returns the status
--
-- @treturn integer exit status
-- @treturn integer terminating signal, 0 if none
-- @raise on a closed process; outside a task; `Cancelled` in a cancelled
-- task. This is an await.
function Process:wait() end

--- The op of `wait`.
--
-- **Cancel safety.** As `wait`.
--
-- @treturn Op an op returning what `wait` returns
-- @raise on a closed process
function Process:wait_op() end

--- Send a signal to the child.
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt="SIGTERM"] string|integer sig a name (`"SIGTERM"` or
-- `"TERM"`, `"SIGKILL"`, ...) or a number
-- @treturn ?boolean `true`, or nil
-- @treturn ?string `ESRCH: no such process` once the child exited
-- @treturn ?string code
-- @raise an unknown signal; on a closed process
function Process:kill(sig) end

--- The child's process id.
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer the pid
-- @raise never
function Process:pid() end

--- Close: kill a child still running (unless `kill_on_drop = false`),
-- reap it, close its pipes. Idempotent.
--
-- **Cancel safety.** Never waits.
--
-- @raise never
function Process:close() end

--- A pipe stream (`quench.pipe`): a child's stdin, stdout or stderr, or
-- the runtime's standard streams. Methods, results and errors are a TCP
-- stream's. `<close>` closes it.
-- @type Pipe

--- Read, waiting as needed (formats as `TcpStream:read`).
--
-- **Cancel safety.** Cancel-safe: bytes are consumed only when the read
-- returns them.
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
-- @raise on a closed pipe; a second reader; outside a task. This is an await.
function Pipe:read(fmt) end

--- Whatever is buffered: at least one byte, at most `max`.
--
-- **Cancel safety.** As `read`.
--
-- @tparam[opt] integer max the most bytes
-- @treturn ?string the data, or nil at EOF
-- @treturn ?string message
-- @treturn ?string code
-- @raise as `read`. This is an await.
function Pipe:read_some(max) end

--- Whatever `read_some(max)` would return, left buffered: the next read
-- returns the same bytes. Waits until at least one byte is buffered.
--
-- **Cancel safety.** Nothing is ever consumed: a dropped peek loses nothing.
--
-- * before it waits: nothing read
-- * while waiting: nothing read
-- * given, not resumed: nothing read (a peek never consumes)
--
-- @tparam[opt] integer max the most bytes to return
-- @treturn ?string the data, or nil at EOF
-- @treturn ?string message on an I/O error
-- @treturn ?string code
-- @raise on a closed pipe; a second reader (a peek is a reader); outside a
-- task; `Cancelled` in a cancelled task. This is an await.
function Pipe:peek(max) end

--- The op of `peek(max)`.
--
-- **Cancel safety.** As `peek`.
--
-- @tparam[opt] integer max as `peek`
-- @treturn Op an op returning what `peek` returns
-- @raise on a closed pipe
function Pipe:peek_op(max) end

--- Wait until a `read_some` would not wait (bytes are buffered, or EOF or
-- an error is there to report); reads nothing.
--
-- **Cancel safety.** Nothing moves: a dropped `readable` changes nothing.
--
-- * before it waits: nothing done
-- * while waiting: nothing done: it moves no data
-- * given, not resumed: nothing done
--
-- @treturn ?boolean `true`, or nil, `"ECANCELED: ..."`, `"ECANCELED"` when
-- the pipe is closed while it waits
-- @raise on a closed pipe; a second reader; outside a task; `Cancelled` in
-- a cancelled task. This is an await.
function Pipe:readable() end

--- The op of `readable()`.
--
-- **Cancel safety.** As `readable`.
--
-- @treturn Op an op returning what `readable` returns
-- @raise on a closed pipe
function Pipe:readable_op() end

--- Wait until a `write` would not wait (at most `write_limit` bytes are
-- queued, or a write would fail at once); writes nothing.
--
-- **Cancel safety.** Nothing moves: a dropped `writable` changes nothing.
--
-- * before it waits: nothing done
-- * while waiting: nothing done: it moves no data
-- * given, not resumed: nothing done
--
-- @treturn ?boolean `true`, or nil, `"ECANCELED: ..."`, `"ECANCELED"` when
-- the pipe is closed while it waits
-- @raise on a closed pipe; after `shutdown`; a second writer; outside a
-- task; `Cancelled` in a cancelled task. This is an await.
function Pipe:writable() end

--- The op of `writable()`.
--
-- **Cancel safety.** As `writable`.
--
-- @treturn Op an op returning what `writable` returns
-- @raise on a closed pipe
function Pipe:writable_op() end

--- `read_some(max)` that never waits.
--
-- **Cancel safety.** Never waits: not a cancellation point; needs no task.
--
-- @tparam[opt] integer max the most bytes to return
-- @treturn ?string the data; nil at EOF
-- @treturn ?string `"EAGAIN: resource temporarily unavailable"` when
-- nothing is buffered, or an I/O error
-- @treturn ?string code (`"EAGAIN"`, ...)
-- @raise on a closed pipe; while another read waits
function Pipe:try_read(max) end

--- `write(...)` that never waits: all of it is taken (written or queued),
-- or nothing while more than `write_limit` bytes are queued.
--
-- **Cancel safety.** Never waits: not a cancellation point; needs no task.
--
-- @param ... strings or numbers, written as one piece
-- @treturn ?Pipe the pipe; nil when nothing was taken
-- @treturn ?string `"EAGAIN: resource temporarily unavailable"`, or the
-- stream's write error
-- @treturn ?string code
-- @raise on a closed pipe; after `shutdown`; while another write waits
function Pipe:try_write(...) end

--- An iterator of `read(fmt)`.
--
-- **Cancel safety.** As `read`.
--
-- @tparam[opt="l"] string fmt a read format
-- @treturn function the iterator
-- @raise on a closed pipe
function Pipe:lines(fmt) end

--- Write strings and numbers as one piece; returns the pipe.
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
-- @treturn ?Pipe the pipe, or nil, message, code
-- @raise on a closed pipe; after `shutdown`; outside a task. This is an await.
function Pipe:write(...) end

--- Shut the write side once everything queued is written.
--
-- **Cancel safety.** A dropped shutdown may still happen.
--
-- * before it waits: nothing done
-- * while waiting: the request is libuv's: it still happens (the reader sees
--   EOF once the queue is written)
-- * given, not resumed: the same, done
--
-- @treturn ?boolean `true`, or nil, message, code
-- @raise a second shutdown; outside a task. This is an await.
function Pipe:shutdown() end

--- Close. Never waits. Idempotent.
--
-- **Cancel safety.** Never waits.
--
-- @raise never
function Pipe:close() end

--- The op of `read(fmt)`.
--
-- **Cancel safety.** As `read`.
--
-- @param[opt] fmt as `read`
-- @treturn Op an op returning what `read` returns
-- @raise on a closed pipe
function Pipe:read_op(fmt) end

--- The op of `read_some(max)`.
--
-- **Cancel safety.** As `read_some`.
--
-- @tparam[opt] integer max as `read_some`
-- @treturn Op an op returning what `read_some` returns
-- @raise on a closed pipe
function Pipe:read_some_op(max) end

--- The op of `write(data)`.
--
-- **Cancel safety.** As `write`.
--
-- @tparam string data the bytes
-- @treturn Op an op returning what `write` returns
-- @raise on a closed pipe
function Pipe:write_op(data) end

--- The op of `shutdown()`.
--
-- **Cancel safety.** As `shutdown`.
--
-- @treturn Op an op returning what `shutdown` returns
-- @raise on a pipe already shut down
function Pipe:shutdown_op() end

--- Bytes read and not yet returned by a read.
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer bytes
-- @raise on a closed pipe
function Pipe:buffered() end

--- Bytes accepted by `write` and not yet handed to the kernel.
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer bytes
-- @raise on a closed pipe
function Pipe:queued() end
