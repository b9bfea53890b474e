--- TLS: encrypted TCP streams, client and server (OpenSSL 3).
--
-- A TLS stream is a TCP stream whose bytes go through TLS: it has every
-- method of `TcpStream`, with the same meaning and cancel safety, plus the
-- TLS ones below. Records are decrypted on the loop side into the stream's
-- plaintext buffer, so a dropped read loses nothing; a write encrypts and
-- queues all its bytes or nothing. The handshake is one op: dropped before
-- it completes, the stream is closed. Certificates are verified by
-- default. Failures are values: `nil, "ETLS_...: OpenSSL's reason",
-- "ETLS_..."` (`ETLS_UNKNOWN_CA`, `ETLS_EXPIRED`, `ETLS_HOSTNAME`,
-- `ETLS_SELF_SIGNED`, `ETLS_VERIFY`, `ETLS_NOT_TLS`, `ETLS_VERSION`,
-- `ETLS_HANDSHAKE`, `ETLS_PROTOCOL`, `ETLS_TRUNCATED`, `ETLS_CONFIG`).
--
-- Options (a table; an unknown key raises): `servername` (SNI and the name
-- verified; default: the host), `verify` (client: `true`, the default, or
-- `false`; server: `"peer"` to require a client certificate), `cafile`,
-- `capath` (default: the system trust store), `certificate`, `key` (PEM
-- paths or PEM text), `password`, `alpn` (a list), `ciphers`,
-- `ciphersuites`, `min_version`/`max_version` (`"TLSv1.2"`, the default
-- minimum, or `"TLSv1.3"`), `session` (client resumption), `context`,
-- `ignore_unexpected_eof`, `sni` (server: `{ [name] = { certificate =,
-- key = [, password =] } or a server context }`, a certificate per SNI
-- name: exact names, then `*.` wildcards of one label; others get the
-- default certificate).
--
-- Guide, with the cancel-safety table: [docs/io.md](../../io.md#tls).
-- @module tls

--- Connect to a TLS server: TCP connect, then the handshake, verified.
--
-- **Cancel safety.** Dropped while connecting: as `quench.tcp.connect`.
-- Dropped during the handshake: the stream is closed and not returned;
-- nothing leaks.
--
-- * before it waits: nothing done
-- * while waiting: connecting: as `quench.tcp.connect`; handshaking: the stream is
--   closed; nothing is returned, nothing leaks
-- * given, not resumed: the stream is closed; the peer sees EOF
--
-- @tparam string host a name or address (the default `servername`)
-- @tparam integer port the port
-- @tparam[opt] table opts the TLS options, and `nodelay`, `keepalive`,
-- `read_limit`, `write_limit`
-- @treturn ?TlsStream the stream, its handshake done, or nil
-- @treturn ?string message (`ETLS_HOSTNAME: certificate verify failed: hostname mismatch`)
-- @treturn ?string code
-- @raise a bad option; outside a task; `Cancelled` in a cancelled task.
-- This is an await.
function quench.tls.connect(host, port, opts) end

--- The op of `connect`: the same wait (the TCP connect, then the
-- handshake, as one future), started when awaited or selected, so a
-- connect and its handshake can race a deadline or a shutdown signal in
-- one `quench.select`. Single-use, as every op. The arguments are checked
-- when it is made, the options when it is awaited (a bad one raises then,
-- as `connect` does).
--
-- **Cancel safety.** As `connect`: dropped while connecting, nothing is
-- left; handshaking, the stream is closed and never returned.
--
-- * before it waits: nothing done
-- * while waiting: connecting: as `quench.tcp.connect`; handshaking: the stream is
--   closed; nothing is returned, nothing leaks
-- * given, not resumed: the stream is closed; the peer sees EOF
--
-- @tparam string host a name or address (the default `servername`)
-- @tparam integer port the port
-- @tparam[opt] table opts as `connect`'s
-- @treturn Op an op whose await returns what `connect` returns
-- @raise `bad argument #1 to 'quench.tls.connect_op' (string expected, ...)`,
-- #2 (a port in 0..65535), #3 (a table)
function quench.tls.connect_op(host, port, opts) end

--- Listen for TLS connections. Does not wait.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @tparam ?string host as `quench.tcp.listen`
-- @tparam integer port 0 picks a free port
-- @tparam table opts `certificate` and `key` (required, the default
-- certificate), the TLS options (`sni`: a certificate per name), and the
-- options of `quench.tcp.listen`
-- @treturn ?TlsServer the server, or nil
-- @treturn ?string message (`ETLS_CONFIG: ...`, `EADDRINUSE: ...`)
-- @treturn ?string code
-- @raise a bad option (`sni` on a client; an `sni` entry that is neither
-- a table of `certificate`, `key`, `password` nor a server context); no
-- certificate or key; `verify = "peer"` without `cafile`/`capath`;
-- outside a runtime.
function quench.tls.listen(host, port, opts) end

--- A context: the options loaded once (certificates, CA store), to share
-- between connections as `opts.context`.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @tparam table opts the TLS options; `server = true` for a server context
-- @treturn ?userdata the context (`quench.tls.context`), or nil
-- @treturn ?string message (`ETLS_CONFIG: ...`)
-- @treturn ?string code
-- @raise a bad option.
function quench.tls.context(opts) end

--- Upgrade a connected TCP stream to TLS (STARTTLS): the same object
-- becomes a `TlsStream`, and its handshake runs now.
--
-- **Cancel safety.** Dropped before it waits: the stream is unchanged.
-- Dropped during the handshake: the stream (already a TLS one) is closed.
--
-- * before it waits: nothing done: the stream is unchanged
-- * while waiting: the stream, already a TLS stream, is closed
-- * given, not resumed: done: the handshake completed
--
-- @tparam[opt] table opts the TLS options; `server = true` for the server
-- side (then `certificate` and `key`); a verifying client needs `servername`
-- @treturn ?TlsStream the same stream, or nil (the stream is then closed)
-- @treturn ?string message
-- @treturn ?string code
-- @raise a bad option; a verifying client without `servername`; a read or
-- write waiting on the stream; after `shutdown`; outside a task;
-- `Cancelled` in a cancelled task. This is an await.
function TcpStream:starttls(opts) end

--- A TLS server (`quench.tls.server`). `<close>` closes it.
-- @type TlsServer

--- The next connection, as a TLS stream, at once: its handshake runs in
-- the task that first reads, writes or calls `handshake`.
--
-- **Cancel safety.** As `TcpServer:accept`: a dropped accept leaves the
-- connection queued. The handshake is not part of it.
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken: connections stay queued, in order (the handshake
--   is not part of accept)
-- * given, not resumed: nothing taken: the connection stays first in the queue
--
-- @treturn ?TlsStream the connection, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise on a closed server; outside a task; `Cancelled` in a cancelled
-- task. This is an await.
function TlsServer:accept() end

--- The op of `accept`.
--
-- **Cancel safety.** As `accept`.
--
-- @treturn Op the op
-- @raise on a closed server
function TlsServer:accept_op() end

--- The address the server listens on.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn string host
-- @treturn integer port
-- @raise on a closed server
function TlsServer:getsockname() end

--- Close the server (idempotent); queued connections are closed.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn boolean `true`
-- @raise never
function TlsServer:close() end

--- A TLS stream (`quench.tls.stream`): a `TcpStream` through TLS.
-- One reader and one writer at a time.
-- @type TlsStream

--- Run the handshake (or wait for the one running), at once if done.
--
-- **Cancel safety.** Not cancel-safe by design: dropped before it
-- completes, the stream is closed (a handshake is never resumed).
--
-- * before it waits: nothing done
-- * while waiting: **the stream is closed**: a handshake is one op, never resumed
--   half done (reads and writes then raise "closed stream")
-- * given, not resumed: done: the handshake completed
--
-- @treturn ?boolean `true`, or nil
-- @treturn ?string message (`ETLS_UNKNOWN_CA: ...`, `ETLS_NOT_TLS: ...`)
-- @treturn ?string code
-- @raise on a closed stream; outside a task; `Cancelled` in a cancelled
-- task. This is an await.
function TlsStream:handshake() end

--- The op of `handshake`.
--
-- **Cancel safety.** As `handshake`: dropped while waiting, the stream is
-- closed.
--
-- @treturn Op the op
-- @raise on a closed stream
function TlsStream:handshake_op() end

--- The protocol ALPN chose.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn ?string the protocol, or nil (none, or before the handshake)
-- @raise on a closed stream
function TlsStream:alpn() end

--- The protocol version.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn ?string `"TLSv1.3"`, `"TLSv1.2"`; nil before the handshake
-- @raise on a closed stream
function TlsStream:tls_version() end

--- The cipher suite.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn ?string its OpenSSL name (`"TLS_AES_256_GCM_SHA384"`); nil
-- before the handshake
-- @raise on a closed stream
function TlsStream:cipher() end

--- The peer's certificate.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn ?table `subject`, `issuer` (RFC 2253), `serial` (hex),
-- `not_before`, `not_after` (seconds since the epoch, UTC), `sha256`
-- (`"AB:CD:..."`), `alt_names` (`{"DNS:localhost", "IP:127.0.0.1"}`),
-- `pem`; nil if the peer sent none or before the handshake
-- @raise on a closed stream
function TlsStream:peer_certificate() end

--- Client: the session, to resume later with `opts.session`.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn ?userdata a `quench.tls.session`, or nil (TLS 1.3 sends it
-- after the handshake: read something first)
-- @raise on a closed stream
function TlsStream:session() end

--- Client: whether this connection resumed a session.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn boolean
-- @raise on a closed stream
function TlsStream:session_reused() end

--- Server: the name the client asked for (SNI).
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn ?string the name, or nil
-- @raise on a closed stream
function TlsStream:servername() end

--- Read, waiting as needed (the handshake first, if not done).
--
-- **Cancel safety.** Cancel-safe: plaintext is consumed only when the
-- read returns it; records are decrypted on the loop side, never in the
-- waiting read. During a handshake not done yet, as `handshake` (the
-- stream is closed).
--
-- * before it waits: nothing read
-- * while waiting: **nothing read**: records are decrypted on the loop side, never
--   in the waiting read, and plaintext stays buffered for the next read (on a
--   stream whose handshake is still running: the stream is closed)
-- * given, not resumed: nothing read
--
-- @tparam[opt="l"] integer|string fmt as `TcpStream:read`
-- @treturn ?string the data; nil at EOF (close_notify)
-- @treturn ?string message (`ETLS_TRUNCATED: ...` on an EOF without close_notify)
-- @treturn ?string code
-- @raise on a closed stream; a second reader; outside a task; `Cancelled`
-- in a cancelled task. This is an await.
function TlsStream:read(fmt) end

--- Whatever plaintext is buffered: at least one byte, at most `max`.
--
-- **Cancel safety.** As `read`.
--
-- @tparam[opt] integer max at most this many bytes
-- @treturn ?string the data; nil at EOF
-- @treturn ?string message
-- @treturn ?string code
-- @raise as `read`
function TlsStream:read_some(max) end

--- An iterator of reads of `fmt` (default `"l"`), until EOF.
--
-- **Cancel safety.** As `read`, per call.
--
-- @tparam[opt="l"] integer|string fmt as `read`
-- @treturn function the iterator
-- @raise the iterator raises an I/O error (naming `lines`)
function TlsStream:lines(fmt) end

--- Write strings and numbers as one: encrypted into records and queued whole.
--
-- **Cancel safety.** All or nothing: a dropped write (it waits only for
-- the handshake, or while the queue is over `write_limit`) wrote nothing;
-- a returned write was encrypted whole and goes out even if the task is
-- dropped right after.
--
-- * before it waits: nothing written
-- * while waiting: **nothing written** (it waits only while the queue is over
--   `write_limit`, or for the handshake: then the stream is closed)
-- * given, not resumed: nothing written. Once `write` returned, all its bytes were
--   encrypted into records and queued whole: they go out even if the task is
--   dropped right after
--
-- @param ... strings or numbers
-- @treturn ?TlsStream the stream, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise on a closed stream; after `shutdown`; a second writer; outside a
-- task; `Cancelled` in a cancelled task. This is an await.
function TlsStream:write(...) end

--- Send close_notify, then shut the socket's write side, once everything queued is written.
--
-- **Cancel safety.** Dropped while waiting, it still happens.
--
-- * before it waits: nothing done
-- * while waiting: close_notify is queued, and the socket's shutdown is libuv's: both
--   still happen
-- * given, not resumed: done
--
-- @treturn ?boolean `true`, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise on a closed stream; a second shutdown; outside a task. This is an await.
function TlsStream:shutdown() end

--- Close (idempotent): close_notify goes out after what is queued, best effort.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn boolean `true`
-- @raise never
function TlsStream:close() end

--- Close at once with a TCP RST (no close_notify).
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn boolean `true`
-- @raise on a closed stream
function TlsStream:close_reset() end

--- The op of `read`.
--
-- **Cancel safety.** As `read`.
--
-- @tparam[opt="l"] integer|string fmt as `read`
-- @treturn Op the op
-- @raise on a closed stream; a bad format
function TlsStream:read_op(fmt) end

--- The op of `read_some`.
--
-- **Cancel safety.** As `read_some`.
--
-- @tparam[opt] integer max as `read_some`
-- @treturn Op the op
-- @raise on a closed stream
function TlsStream:read_some_op(max) end

--- The op of `write` (one string).
--
-- **Cancel safety.** As `write`.
--
-- @tparam string data the bytes
-- @treturn Op the op
-- @raise on a closed stream
function TlsStream:write_op(data) end

--- The op of `shutdown`.
--
-- **Cancel safety.** As `shutdown`.
--
-- @treturn Op the op
-- @raise on a closed stream
function TlsStream:shutdown_op() end

--- The local address.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn string host
-- @treturn integer port
-- @raise on a closed stream
function TlsStream:getsockname() end

--- The peer's address.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn string host
-- @treturn integer port
-- @raise on a closed stream
function TlsStream:getpeername() end

--- TCP_NODELAY on (default) or off.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @tparam[opt=true] boolean on
-- @treturn ?boolean `true`, or nil, msg, code
-- @raise on a closed stream
function TlsStream:nodelay(on) end

--- TCP keep-alive on (default) or off.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @tparam[opt=true] boolean on
-- @tparam[opt=60] integer delay seconds
-- @treturn ?boolean `true`, or nil, msg, code
-- @raise on a closed stream; a bad delay
function TlsStream:keepalive(on, delay) end

--- Plaintext bytes decrypted and not read yet.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn integer bytes
-- @raise on a closed stream
function TlsStream:buffered() end

--- Ciphertext bytes queued and not written yet.
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @treturn integer bytes
-- @raise on a closed stream
function TlsStream:queued() end

--- What `read_some(max)` would return, left buffered (as `TcpStream:peek`):
-- decrypted bytes, which the loop has already taken from the records.
--
-- **Cancel safety.** As `TcpStream:peek`.
--
-- @tparam[opt] integer max the most bytes to return
-- @treturn ?string the data, or nil at EOF
-- @treturn ?string message on an I/O error
-- @treturn ?string code
-- @raise as `TcpStream:peek`. This is an await.
function TlsStream:peek(max) end

--- The op of `peek(max)`.
--
-- **Cancel safety.** As `peek`.
--
-- @tparam[opt] integer max as `peek`
-- @treturn Op an op returning what `peek` returns
-- @raise on a closed stream
function TlsStream:peek_op(max) end

--- Wait until a read would not wait (as `TcpStream:readable`).
--
-- **Cancel safety.** As `TcpStream:readable`.
--
-- @treturn ?TlsStream the stream, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise as `TcpStream:readable`. This is an await.
function TlsStream:readable() end

--- The op of `readable()`.
--
-- **Cancel safety.** As `readable`.
--
-- @treturn Op an op returning what `readable` returns
-- @raise on a closed stream
function TlsStream:readable_op() end

--- Wait until a write would not wait (as `TcpStream:writable`).
--
-- **Cancel safety.** As `TcpStream:writable`.
--
-- @treturn ?TlsStream the stream, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise as `TcpStream:writable`. This is an await.
function TlsStream:writable() end

--- The op of `writable()`.
--
-- **Cancel safety.** As `writable`.
--
-- @treturn Op an op returning what `writable` returns
-- @raise on a closed stream
function TlsStream:writable_op() end

--- `read_some(max)` that never waits (as `TcpStream:try_read`).
--
-- **Cancel safety.** Never waits: not a cancellation point; needs no task.
--
-- @tparam[opt] integer max the most bytes
-- @treturn ?string the data; nil at EOF or when nothing is buffered
-- @treturn ?string `"EAGAIN: ..."` when nothing is buffered, or the error
-- @treturn ?string code
-- @raise as `TcpStream:try_read`
function TlsStream:try_read(max) end

--- `write(...)` that never waits (as `TcpStream:try_write`).
--
-- **Cancel safety.** Never waits: not a cancellation point; needs no task.
--
-- @param ... strings or numbers, written as one piece
-- @treturn ?TlsStream the stream; nil when nothing was taken
-- @treturn ?string `"EAGAIN: ..."`, or the stream's write error
-- @treturn ?string code
-- @raise as `TcpStream:try_write`
function TlsStream:try_write(...) end

--- Set how long a `close` with writes queued waits for the peer (as
-- `TcpStream:linger`); the close_notify is one of those writes.
--
-- **Cancel safety.** Never waits.
--
-- @tparam number seconds 0..86400
-- @treturn boolean `true`
-- @raise as `TcpStream:linger`
function TlsStream:linger(seconds) end
