--- `require "quench.socket"`: LuaSocket's API on quench tasks.
--
-- The objects and functions of LuaSocket 3 (`socket`, `socket.core`,
-- `socket.unix`), each waiting call a quench await (it can be aborted,
-- raced and bounded by `quench.timeout`; a LuaSocket timeout is a quench
-- deadline). Results are LuaSocket's: `nil, "timeout" | "closed" | msg
-- [, partial]`. Waiting calls raise outside a quench task. Below, `socket`
-- is `require "quench.socket"`.
--
-- Guide, with the differences from LuaSocket and the cancel safety:
-- [docs/io.md](../../io.md#luasocket-on-quench-quenchsocket).
-- @module quench.socket

--- Load an unmodified LuaSocket-based module with `require "socket"` (and
-- `"socket.core"`, `"socket.unix"`) giving quench.socket, and `"ssl"`
-- giving `quench.ssl`; its other
-- `"socket.*"` requires are loaded the same way, other names by the real
-- `require`. Each module is loaded once.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string name the module, e.g. `"socket.http"`, `"socket.smtp"`,
-- `"redis"`
-- @tparam[opt] table opts `path` (more `package.path` templates, e.g.
-- `"/usr/share/lua/5.3/?.lua"` for Debian's lua-redis), `async` (a list of
-- other module names to load the same way), `globals` (a table of names
-- the loaded modules see instead of the real globals, e.g. a `table` with
-- Lua 5.1's `insert` for redis-lua's `pipeline`)
-- @return the module
-- @raise a module not found; `opts.globals` not a table; an `ssl.*` name
-- other than `ssl`, `ssl.https`, `ssl.config` (`ssl` gives `quench.ssl`,
-- and lua-sec's `ssl.https` loads through the loader); the module's own
-- load errors
-- @usage local http = socket.require "socket.http"
function socket.require(name, opts) end

--- A TCP master object (`tcp{master}`): `connect` makes it a client,
-- `bind` + `listen` a server. `tcp4`, `tcp6` are the same (the family is
-- the address's).
--
-- **Cancel safety.** Never waits.
--
-- @treturn Socket the object
-- @raise never
function socket.tcp() end

--- As `tcp`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn Socket the object
-- @raise never
function socket.tcp4() end

--- As `tcp`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn Socket the object
-- @raise never
function socket.tcp6() end

--- A UDP object (`udp{unconnected}`), bound on first use or by
-- `setsockname`. `udp4`, `udp6` are the same (udp6 binds to `::`).
--
-- **Cancel safety.** Never waits.
--
-- @treturn Udp the object
-- @raise never
function socket.udp() end

--- As `udp`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn Udp the object
-- @raise never
function socket.udp4() end

--- As `udp`, binding to `::` when unbound.
--
-- **Cancel safety.** Never waits.
--
-- @treturn Udp the object
-- @raise never
function socket.udp6() end

--- A Unix stream master (`unix{master}`); `socket.unix()` is the same.
-- Its `connect(path)` and `bind(path)` take a path or `"@name"`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn Socket the object
-- @raise never
function socket.unix.stream() end

--- A Unix datagram object (`unixdgram{unconnected}`), LuaSocket 3's
-- `socket.unix.dgram`; `socket.unix.udp` is the same (as `unix.tcp` is
-- `unix.stream`). Over `quench.unix.dgram`: names are paths or `"@name"`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn UnixDgramSocket the object
-- @raise never
function socket.unix.dgram() end

--- Connect to host:port: a client, or nil, err.
--
-- **Cancel safety.** As `Socket:connect`.
--
-- @tparam string host a name or address
-- @tparam integer port the port
-- @tparam[opt] string locaddr a local address to leave from (the object
-- binds it before connecting; `"*"`: any)
-- @tparam[opt] integer locport the local port (default 0: any)
-- @tparam[opt] string family `"inet"` or `"inet6"`
-- @treturn ?Socket the client, or nil
-- @treturn ?string `"connection refused"`, `"host not found"`, `"timeout"`...
-- @raise a bad port; outside a task. This is an await.
function socket.connect(host, port, locaddr, locport, family) end

--- `connect` for IPv4.
--
-- **Cancel safety.** As `connect`.
--
-- @tparam string host a name or address
-- @tparam integer port the port
-- @treturn ?Socket the client, or nil
-- @treturn ?string the error
-- @raise as `connect`. This is an await.
function socket.connect4(host, port) end

--- `connect` for IPv6.
--
-- **Cancel safety.** As `connect`.
--
-- @tparam string host a name or address
-- @tparam integer port the port
-- @treturn ?Socket the client, or nil
-- @treturn ?string the error
-- @raise as `connect`. This is an await.
function socket.connect6(host, port) end

--- A server listening on host:port (reuseaddr set), or nil, err.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string host an address, or `"*"` for every IPv4 address
-- @tparam integer port 0 picks a free port
-- @tparam[opt] integer backlog ignored (quench listens at bind)
-- @treturn ?Socket the server, or nil
-- @treturn ?string `"address already in use"`...
-- @raise a bad port; outside a runtime
function socket.bind(host, port, backlog) end

--- Wait until one of `recvt` is readable (a client with data, a server
-- with a connection), or `timeout` seconds. Clients in `sendt` are
-- always writable.
--
-- **Cancel safety.** Nothing lost: data read while it waited is kept in
-- the object, a connection accepted is kept in the server.
--
-- * before it waits: nothing read
-- * while waiting: nothing lost: data read while it waited is kept in the
--   object, a connection accepted is kept in the server
-- * given, not resumed: the same
--
-- @tparam ?{Socket,...} recvt objects to read from
-- @tparam ?{Socket,...} sendt objects to write to
-- @tparam[opt] number timeout seconds (nil or negative: no bound)
-- @treturn table the readable ones (a list that also maps object -> index)
-- @treturn table the writable ones
-- @treturn ?string `"timeout"` when none was ready
-- @raise outside a task. This is an await.
function socket.select(recvt, sendt, timeout) end

--- Wait `t` seconds as `quench.sleep` (other tasks run); 0 yields.
--
-- **Cancel safety.** Nothing to lose.
--
-- * before it waits: nothing to lose
-- * while waiting: nothing to lose
-- * given, not resumed: nothing to lose
--
-- @tparam number t seconds
-- @raise a non-number; outside a task. This is an await.
function socket.sleep(t) end

--- Epoch seconds on quench's clock (see docs/io.md); `os.time()` outside
-- a runtime.
--
-- **Cancel safety.** Never waits.
--
-- @treturn number seconds
-- @raise never
function socket.gettime() end

--- A `try` function: its arguments back when the first is true; else it
-- calls `finalizer` and raises a failure that `protect` turns into
-- `nil, err`.
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt] function finalizer called before raising
-- @treturn function try
-- @raise never (the returned function raises the failure)
function socket.newtry(finalizer) end

--- `newtry()` without a finalizer.
--
-- **Cancel safety.** Never waits.
--
-- @param ok the value tested
-- @param ... the rest
-- @return ok and the rest, when ok is true
-- @raise the failure `protect` catches, when ok is nil or false
function socket.try(ok, ...) end

--- Wrap `f` so that a failure raised by a `try` becomes `nil, err`; other
-- errors (bugs, quench's `Cancelled`) pass through.
--
-- **Cancel safety.** As `f`'s; an abort of its task passes through.
--
-- @tparam function f the function
-- @treturn function the wrapped function
-- @raise never (the wrapped function raises what is not a try failure)
function socket.protect(f) end

--- Its arguments after the first `d`.
--
-- **Cancel safety.** Never waits.
--
-- @tparam integer d how many to skip
-- @param ... values
-- @return ... the rest
-- @raise never
function socket.skip(d, ...) end

--- A function that calls `t[name](opt1, opt2)` (LuaSocket's `choose`).
--
-- **Cancel safety.** Never waits.
--
-- @tparam table t the choices, `default` among them
-- @treturn function the chooser
-- @raise never (the chooser raises `unknown key (name)`)
function socket.choose(t) end

--- An LTN12 sink writing to a socket: `"keep-open"` (default) or
-- `"close-when-done"`.
--
-- **Cancel safety.** As `Socket:send`.
--
-- @tparam[opt="default"] string mode the mode
-- @tparam Socket sock the socket
-- @treturn table a sink (callable)
-- @raise an unknown mode
function socket.sink(mode, sock) end

--- An LTN12 source reading a socket: `"until-closed"` (default) or
-- `"by-length"` (with a length).
--
-- **Cancel safety.** As `Socket:receive`.
--
-- @tparam[opt="default"] string mode the mode
-- @tparam Socket sock the socket
-- @tparam[opt] integer length for `"by-length"`
-- @treturn table a source (callable)
-- @raise an unknown mode
function socket.source(mode, sock, length) end

--- The addresses of a host: `{{family =, addr =}, ...}`.
--
-- **Cancel safety.** Safe: a lookup changes nothing.
--
-- @tparam string host the name
-- @treturn ?table the list, or nil
-- @treturn ?string `"host not found"`...
-- @raise outside a task. This is an await.
function socket.dns.getaddrinfo(host) end

--- A host's first IPv4 address (else its first), and LuaSocket's
-- resolver table.
--
-- **Cancel safety.** Safe.
--
-- @tparam string host the name
-- @treturn ?string the address, or nil
-- @treturn table|string `{name, alias, ip}`, or the error
-- @raise outside a task. This is an await.
function socket.dns.toip(host) end

--- This machine's host name.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?string the name, or nil
-- @treturn ?string the error
-- @raise never
function socket.dns.gethostname() end

--- A TCP or Unix socket object: `tcp{master}`, `tcp{client}`,
-- `tcp{server}`, `unix{...}`. `<close>` closes it.
-- @type Socket

--- Connect a master (host, port; a Unix master: a path): it becomes a
-- client. `1`, or nil, err.
--
-- **Cancel safety.** A dropped connect closes its half-made connection; the
-- object stays a master.
--
-- * before it waits: nothing done
-- * while waiting: the half-made connection is closed; the object stays a
--   master
-- * given, not resumed: the connected stream is closed; the object stays a
--   master
--
-- After `bind` (TCP, not `listen`): the connection leaves from the bound
-- address and port (the listener `bind` opened is closed first). Without
-- one, a connection kept with `setkeepalive` to the same host and port is
-- taken first (no wait).
--
-- @tparam string host the host (or path)
-- @tparam[opt] integer port the port (TCP)
-- @treturn ?integer 1, or nil
-- @treturn ?string `"connection refused"`, `"timeout"`, `"closed"`...
-- @raise bad arguments; outside a task. This is an await (a Unix connect
-- never waits).
function Socket:connect(host, port) end

--- Bind a master (and listen: see docs/io.md). `1`, or nil, err.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string host an address, `"*"`, or a path (Unix)
-- @tparam[opt] integer port the port (TCP)
-- @treturn ?integer 1, or nil
-- @treturn ?string `"address already in use"`...
-- @raise a bad port; outside a runtime
function Socket:bind(host, port) end

--- Make a bound master a server. `1`, or nil, err.
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt] integer backlog ignored (set at bind)
-- @treturn ?integer 1, or nil
-- @treturn ?string `"not bound"`
-- @raise never
function Socket:listen(backlog) end

--- A server's next connection (a client), or nil, err.
--
-- **Cancel safety.** Cancel-safe: nothing is taken until it returns.
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken: connections stay queued
-- * given, not resumed: nothing taken: the connection stays first in the
--   queue
--
-- @treturn ?Socket the client, or nil
-- @treturn ?string `"timeout"`, `"closed"`
-- @raise outside a task. This is an await.
function Socket:accept() end

--- Send `data:sub(i, j)` whole: the index of the last byte sent, or nil,
-- err, the index of the last byte sent before the error.
--
-- **Cancel safety.** All or nothing: a dropped send wrote nothing.
--
-- * before it waits: nothing sent
-- * while waiting: nothing sent (it only waits while the write queue is
--   full)
-- * given, not resumed: nothing sent; once `send` returned, its bytes are
--   queued whole
--
-- @tparam string data the bytes
-- @tparam[opt=1] integer i from (negative: from the end)
-- @tparam[opt=-1] integer j to
-- @treturn ?integer the last index sent, or nil
-- @treturn ?string `"closed"`, `"timeout"`
-- @treturn ?integer the last index sent before the error
-- @raise bad arguments; outside a task. This is an await.
function Socket:send(data, i, j) end

--- Receive by a pattern: `"*l"`/`"l"` (a line, every CR dropped), `"*a"`
-- (until closed), or a count; `prefix` goes first. data, or nil, err,
-- partial.
--
-- **Cancel safety.** Nothing lost when dropped: what was received stays
-- in the object for the next receive. A timeout returns the partial data
-- (consumed), as LuaSocket's.
--
-- * before it waits: nothing received
-- * while waiting: nothing lost: bytes received so far stay in the object
--   (`dirty()`), the rest in the quench stream; the next `receive` starts
--   with them
-- * given, not resumed: nothing lost: the data moves into the object only
--   when the read returns
--
-- @param[opt="*l"] pattern the pattern
-- @tparam[opt] string prefix prepended
-- @treturn ?string the data, or nil
-- @treturn ?string `"closed"`, `"timeout"`
-- @treturn ?string the partial data
-- @raise a bad pattern; outside a task. This is an await.
function Socket:receive(pattern, prefix) end

--- Set the block (`"b"`, default) or total (`"t"`) timeout, in seconds;
-- nil or negative: none.
--
-- **Cancel safety.** Never waits.
--
-- @tparam ?number value seconds
-- @tparam[opt="b"] string mode `"b"` or `"t"`
-- @treturn integer 1
-- @raise a non-number; a bad mode
function Socket:settimeout(value, mode) end

--- The block and total timeouts (-1: none).
--
-- **Cancel safety.** Never waits.
--
-- @treturn number block
-- @treturn number total
-- @raise never
function Socket:gettimeout() end

--- Set an option: `tcp-nodelay`, `keepalive`, `reuseaddr`, `reuseport`,
-- `linger` (`{on =, timeout =}`), `ipv6-v6only`.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string name the option
-- @param value its value
-- @treturn integer 1
-- @raise `unsupported option 'name'`; linger without a table
function Socket:setoption(name, value) end

--- An option's value (false if never set).
--
-- **Cancel safety.** Never waits.
--
-- @tparam string name the option
-- @return the value
-- @raise never
function Socket:getoption(name) end

--- The peer's address, port and family (`"inet"`, `"inet6"`); a Unix
-- socket: its path. Or nil, err.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?string address, or nil
-- @treturn integer|string port, or the error
-- @treturn ?string family
-- @raise never
function Socket:getpeername() end

--- This end's address, port and family (a Unix socket: its path).
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?string address, or nil
-- @treturn integer|string port, or the error
-- @treturn ?string family
-- @raise never
function Socket:getsockname() end

--- Shut down `"send"` or `"both"` (the peer reads EOF once everything is
-- written); `"receive"` does nothing. `1`, or nil, err.
--
-- **Cancel safety.** A dropped shutdown may still happen.
--
-- * before it waits: nothing done
-- * while waiting: the shutdown may still happen (libuv's request)
-- * given, not resumed: done
--
-- @tparam[opt="both"] string how the direction
-- @treturn ?integer 1, or nil
-- @treturn ?string the error
-- @raise a bad direction; outside a task. This is an await.
function Socket:shutdown(how) end

--- Close (idempotent; what was sent is still delivered, unless linger
-- `{on = true, timeout = 0}`: reset).
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer 1
-- @raise never
function Socket:close() end

--- Whether received data waits to be read (or, on a server, an accepted
-- connection).
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean waiting or not
-- @raise never
function Socket:dirty() end

--- Bytes received, bytes sent, and the object's age in seconds.
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer received
-- @treturn integer sent
-- @treturn number age
-- @raise never
function Socket:getstats() end

--- Reset the counters.
--
-- **Cancel safety.** Never waits.
--
-- @tparam number received bytes
-- @tparam number sent bytes
-- @tparam number age seconds
-- @treturn integer 1
-- @raise never
function Socket:setstats(received, sent, age) end

--- A quench extension (OpenResty's idiom): put the connection in
-- `quench.pool` for the next `connect` to the same destination (the same
-- host string and port, or Unix path), and close the object. Only a client
-- made by `connect` is pooled, and only a clean one.
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt] number idle seconds it may stay idle (default 60; `0`: no limit)
-- @tparam[opt] integer size idle connections kept for the destination
-- (default 30; past it the oldest is closed)
-- @treturn ?integer `1`
-- @treturn ?string `"unread data in buffer"`, `"closed"` (EOF, an error or
-- a shutdown seen), `"connection in dubious state"` (a call on it timed out
-- or was dropped, or the peer wrote or closed while it was idle),
-- `"connection not pooled (accepted, or from a chosen local address)"`:
-- the connection is closed instead
-- @raise a negative `idle`, a `size` that is not a positive integer
function Socket:setkeepalive(idle, size) end

--- How many times this connection was taken from the pool (0: a new one).
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?integer the count
-- @treturn ?string `"closed"`
-- @raise never
function Socket:getreusedtimes() end

--- The descriptor of a connected client (TCP or Unix) or of a server (its
-- listening socket), else -1 (a master, which has no socket until
-- `connect` or `bind`; a closed object). It stays quench's: use it for
-- `getsockopt` and the like, never to read, write or close it (use
-- `socket.select` with the objects themselves).
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer the descriptor, or -1
-- @raise never
function Socket:getfd() end

--- On a master (an object with no descriptor yet): adopt `fd`, a connected
-- or listening TCP or Unix socket someone else opened (`quench.adopt`), so
-- the object becomes its client or its server, and quench owns the
-- descriptor. On any other object it does nothing (quench never swaps a
-- live object's descriptor).
--
-- **Cancel safety.** Never waits.
--
-- @tparam integer fd the descriptor
-- @treturn ?integer `1` (nothing on a non-master)
-- @treturn ?string as `quench.adopt` (`"ENOTSOCK: ..."`, ...)
-- @raise a non-integer `fd`; as `quench.adopt` (0, 1, 2; outside a runtime)
function Socket:setfd(fd) end

--- A UDP object (`udp{unconnected}`, `udp{connected}`). It also has
-- `settimeout`, `gettimeout`, `setoption`, `getstats`, `setfd` (does
-- nothing) as `Socket`.
-- @type Udp

--- Bind to host:port. `1`, or nil, err.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string host an address or `"*"`
-- @tparam integer port the port
-- @treturn ?integer 1, or nil
-- @treturn ?string the error
-- @raise a bad port; outside a runtime
function Udp:setsockname(host, port) end

--- Connect to host:port (`"*"`: disconnect). `1`, or nil, err.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string host the peer
-- @tparam[opt] integer port its port
-- @treturn ?integer 1, or nil
-- @treturn ?string the error
-- @raise bad arguments
function Udp:setpeername(host, port) end

--- Send a datagram to the peer: its size, or nil, err.
--
-- **Cancel safety.** Whole or not at all.
--
-- * before it waits: nothing sent
-- * while waiting: the datagram may still go out (the socket was busy), once
--   at most
-- * given, not resumed: sent
--
-- @tparam string data the datagram
-- @treturn ?integer bytes, or nil
-- @treturn ?string the error
-- @raise unconnected; outside a task. This is an await.
function Udp:send(data) end

--- Send a datagram to ip:port.
--
-- **Cancel safety.** As `Udp:send`.
--
-- @tparam string data the datagram
-- @tparam string ip the address
-- @tparam integer port the port
-- @treturn ?integer bytes, or nil
-- @treturn ?string the error
-- @raise bad arguments; outside a task. This is an await.
function Udp:sendto(data, ip, port) end

--- Receive a datagram (a connected object: from its peer only).
--
-- **Cancel safety.** Nothing lost: a datagram is taken only when returned.
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken
-- * given, not resumed: nothing taken: a datagram is taken only when
--   returned
--
-- @tparam[opt=8192] integer size the most bytes
-- @treturn ?string the datagram, or nil
-- @treturn ?string `"timeout"`, `"closed"`
-- @raise outside a task. This is an await.
function Udp:receive(size) end

--- Receive a datagram and its sender.
--
-- **Cancel safety.** As `receive`.
--
-- @tparam[opt=8192] integer size the most bytes
-- @treturn ?string the datagram, or nil
-- @treturn string the sender's address, or the error
-- @treturn ?integer the sender's port
-- @raise outside a task. This is an await.
function Udp:receivefrom(size) end

--- The bound address and port.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?string address, or nil
-- @treturn integer|string port, or the error
-- @raise never
function Udp:getsockname() end

--- The peer set by `setpeername`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?string address, or nil
-- @treturn integer|string port, or `"not connected"`
-- @raise never
function Udp:getpeername() end

--- Close (idempotent).
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer 1
-- @raise never
function Udp:close() end

--- The socket's descriptor (still quench's), or -1 before its first use
-- (`setsockname`, `setpeername`, a send or receive) and once closed.
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer the descriptor, or -1
-- @raise never
function Udp:getfd() end

--- Always false: a datagram object buffers nothing of its own.
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean false
-- @raise never
function Udp:dirty() end

--- A Unix datagram object (`unixdgram{unconnected}`,
-- `unixdgram{connected}`), unnamed until `bind`. It also has `settimeout`,
-- `gettimeout`, `setoption`, `getstats`, `setfd` as `Socket`.
-- @type UnixDgramSocket

--- Bind to a path or `"@name"` (`setsockname` is the same): a stale socket
-- file there is replaced. `1`, or nil, err.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string path the name
-- @treturn ?integer 1, or nil
-- @treturn ?string the error (`"address already in use"`, ...)
-- @raise a bad name; outside a runtime
function UnixDgramSocket:bind(path) end

--- Connect to a path (`setpeername` is the same): `send` goes there, and
-- `receive` hears only it. `1`, or nil, err.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string path the peer's name
-- @treturn ?integer 1, or nil
-- @treturn ?string the error (`"no such file or directory"`, ...)
-- @raise a bad name; outside a runtime
function UnixDgramSocket:connect(path) end

--- Send a datagram to the peer: its size, or nil, err.
--
-- **Cancel safety.** Once or never: dropped while it waits, nothing was sent.
--
-- * before it waits: nothing sent
-- * while waiting: nothing sent (the receiver was full; it is tried again
--   inside the wait)
-- * given, not resumed: sent, once
--
-- @tparam string data the datagram
-- @treturn ?integer bytes, or nil
-- @treturn ?string the error
-- @raise unconnected; outside a task. This is an await.
function UnixDgramSocket:send(data) end

--- Send a datagram to a path.
--
-- **Cancel safety.** As `UnixDgramSocket:send`.
--
-- @tparam string data the datagram
-- @tparam string path the receiver's name
-- @treturn ?integer bytes, or nil
-- @treturn ?string the error
-- @raise bad arguments; outside a task. This is an await.
function UnixDgramSocket:sendto(data, path) end

--- Receive a datagram.
--
-- **Cancel safety.** Nothing lost: a datagram is taken only when returned.
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken
-- * given, not resumed: nothing taken: a datagram is taken only when
--   returned
--
-- @tparam[opt=8192] integer size the most bytes (the rest is dropped)
-- @treturn ?string the datagram, or nil
-- @treturn ?string `"timeout"`, `"closed"`
-- @raise outside a task. This is an await.
function UnixDgramSocket:receive(size) end

--- Receive a datagram and its sender's name (`""`: unnamed).
--
-- **Cancel safety.** As `receive`.
--
-- @tparam[opt=8192] integer size the most bytes
-- @treturn ?string the datagram, or nil
-- @treturn string the sender's name, or the error
-- @raise outside a task. This is an await.
function UnixDgramSocket:receivefrom(size) end

--- The bound name (`""` when unnamed).
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?string the name, or nil
-- @treturn ?string the error
-- @raise never
function UnixDgramSocket:getsockname() end

--- The peer set by `connect`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?string the name, or nil
-- @treturn ?string `"not connected"`
-- @raise never
function UnixDgramSocket:getpeername() end

--- The descriptor (still quench's), or -1 before first use and once
-- closed.
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer the descriptor, or -1
-- @raise never
function UnixDgramSocket:getfd() end

--- Always false: a datagram socket buffers nothing of its own.
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean false
-- @raise never
function UnixDgramSocket:dirty() end

--- Close (idempotent; removes the socket's file).
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer 1
-- @raise never
function UnixDgramSocket:close() end
