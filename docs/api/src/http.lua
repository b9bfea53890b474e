--- HTTP: an HTTP/1.x server (`quench.http`).
--
-- Each request's handler runs in a task of its own; a client that goes
-- away gets its handler cancelled (`Cancelled` with reason
-- `quench.http.CLIENT_GONE`); `server:stop(grace)` drains, then aborts.
-- Request heads are parsed in C (picohttpparser, from Debian's libh2o);
-- a handler gets Lua strings only for what it asks for.
--
-- Guide, with the limits and a cancel-safety table: [docs/http.md](../../http.md).
-- @module http

--- Listen for HTTP connections (TCP, TLS with `opts.tls`, or a Unix
-- socket with `host = "unix:/path"`; does not wait).
--
-- **Cancel safety.** Never waits: not a cancellation point.
--
-- @tparam ?string host a numeric address or a name resolved at once (as
-- `quench.tcp.listen`), or `"unix:/path"` (`"unix:@name"`: abstract)
-- @tparam integer port 0 picks a free port (see `getsockname`)
-- @tparam[opt] table opts limits and timeouts (`max_line`, `max_head`,
-- `max_headers`, `max_body`, `header_timeout`, `body_timeout`,
-- `keepalive_timeout`, `idle_park` (accepted, no longer has an effect), `cancel_grace`,
-- `linger_timeout`, `grace`, `max_requests`,
-- `max_connections`), `backlog`,
-- `reuseport`, `nodelay`, `sigterm`, `on_error`, `tls` (a table of
-- `quench.tls.listen` options); an unknown key raises
-- @treturn ?HttpServer the server, or nil
-- @treturn ?string message (`EADDRINUSE: ...`)
-- @treturn ?string code
-- @raise `quench.http.listen: unknown option ...`, a bad option value,
-- a `tls` that is not a table, a bad port; outside a runtime.
function quench.http.listen(host, port, opts) end

--- Listen and serve in one call: `listen(opts.host or "127.0.0.1",
-- opts.port or 0, opts)`, `opts.on_listen(server)` if given, then
-- `server:serve(handler)`.
--
-- **Cancel safety.** As `HttpServer:serve`.
--
-- @tparam table opts listen's options, with `host`, `port` and `on_listen`
-- @tparam function handler `handler(req, res)`
-- @treturn ?boolean true once stopped, or nil
-- @treturn ?string message when listening failed
-- @treturn ?string code
-- @raise as `listen` and `serve`. This is an await.
function quench.http.serve(opts, handler) end

--- Parse a query string (`a=1&b=x%20y&a=2`) into a table: name -> value,
-- or a list of values for a name given more than once (`+` is a space).
--
-- **Cancel safety.** Never waits.
--
-- @tparam string query the query, without `?`
-- @treturn table the names and values
-- @raise `bad argument #1 to 'quench.http.parse_query'` for a non-string.
function quench.http.parse_query(query) end

--- Decode the `%XX` escapes and `+` of a query component.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string s the escaped text
-- @treturn string the decoded bytes
-- @raise `bad argument #1 to 'quench.http.unescape'` for a non-string.
function quench.http.unescape(s) end

--- An HTTP server (`quench.http.server`), from `quench.http.listen`.
-- `<close>` closes it (as `close`).
-- @type HttpServer

--- Accept connections and serve their requests with `handler(req, res)`,
-- each in a task of its own, until the server is stopped or closed;
-- returns once every connection has ended. With `opts.sigterm`, SIGTERM
-- stops it (`stop(opts.grace)`).
--
-- **Cancel safety.** Dropping `serve` (its task aborted or cancelled)
-- closes the server: every connection is aborted, handlers included, and
-- their `<close>`s run.
--
-- * before it waits: nothing done
-- * while waiting: the server is closed: connections aborted, handlers'
--   cleanups run
-- * given, not resumed:
--
-- @tparam function handler `handler(req, res)`; an error in it becomes a
-- 500 (reported to `opts.on_error`, else stderr)
-- @treturn boolean true
-- @raise a non-function handler; `serve` called twice. This is an await.
function HttpServer:serve(handler) end

--- Stop: close the listener, close idle connections at once, let
-- requests in flight finish within `grace` seconds (their responses say
-- `Connection: close`), then abort what is left. Returns when every
-- connection has ended.
--
-- **Cancel safety.** Dropped while it waits out the grace: the listener
-- is closed and idle connections are gone already; connections in flight
-- keep running until `serve` ends or `close` is called.
--
-- * before it waits: nothing done
-- * while waiting: the listener is closed and idle connections are gone; in-
--   flight ones run on until `serve` ends or `close`
-- * given, not resumed:
--
-- @tparam[opt] number grace seconds (default `opts.grace`, 10)
-- @treturn boolean true
-- @raise a negative grace. This is an await.
function HttpServer:stop(grace) end

--- Close at once: the listener and every connection; running handlers are
-- aborted (their `<close>`s and defers run before it returns).
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean true
-- @raise never.
function HttpServer:close() end

--- The address the server listens on.
--
-- **Cancel safety.** Never waits.
--
-- @treturn string host
-- @treturn integer port
-- @raise on a server whose runtime ended.
function HttpServer:getsockname() end

--- A request (`quench.http.request`), the first argument of a handler.
-- Fields, each made when first read: `method`, `path`, `query` (the raw
-- query, `""` if none), `args` (`parse_query(query)`), `target` (as sent),
-- `version` (`"1.1"` or `"1.0"`), `headers` (case-insensitive: repeated
-- fields joined with `", "`; `pairs` walks every field in order, as sent),
-- `peer` (`{host =, port =}`; on a Unix socket `{path =}`), `trailers` (after a chunked body: lower-case
-- name -> value).
-- @type HttpRequest

--- The whole body, at most `max_body` bytes. Sends `100 Continue` first
-- when the client asked for it.
--
-- **Cancel safety.** Not safe once started: bytes it read are gone with
-- it (a handler is cancelled only when its request ends anyway).
--
-- * before it waits: nothing read
-- * while waiting: **not safe**: the bytes read so far are gone with it
-- * given, not resumed: as while waiting
--
-- @treturn ?string the body (`""` if none), or nil
-- @treturn ?string message: `EMSGSIZE` over `max_body` (then a 413 is
-- sent unless the handler answers), `ETIMEDOUT` after `body_timeout`
-- without a byte, `EPROTO` for a malformed chunked body, `EOF` when the
-- client closed inside it
-- @treturn ?string code
-- @raise when a reader is reading the body; `Cancelled`. This is an await.
function HttpRequest:body() end

--- A reader of the body, for streaming: `r:read(n | "l" | "L" | "a")`,
-- `r:read_some([max])`, `r:lines([fmt])`, as a stream's.
--
-- **Cancel safety.** Never waits; the reader's reads wait, and keep what
-- they read buffered in the reader.
--
-- @treturn HttpReader the reader
-- @raise when `body()` already read the body.
function HttpRequest:reader() end

--- One header's value: repeated fields joined with `", "`; nil if absent.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string name any case
-- @treturn ?string the value
-- @raise a non-string name.
function HttpRequest:header(name) end

--- Every value of a header, in order.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string name any case
-- @treturn {string,...} the values (empty if none)
-- @raise a non-string name.
function HttpRequest:header_all(name) end

--- A streaming reader of a request body, from `req:reader()`.
-- @type HttpReader

--- Read from the body: `n` bytes (fewer only at its end), a line without
-- (`"l"`, the default) or with (`"L"`) its `"\n"`, or the rest (`"a"`).
--
-- **Cancel safety.** Bytes already decoded stay in the reader's buffer.
--
-- * before it waits: nothing read
-- * while waiting: bytes decoded stay in the reader's buffer for the next
--   read
-- * given, not resumed: nothing lost
--
-- @param[opt] fmt a count, `"l"`, `"L"` or `"a"`
-- @treturn ?string the bytes; nil at the end (`"a"`: `""`)
-- @treturn ?string message on a failure (as `body()`)
-- @treturn ?string code
-- @raise a bad format; `Cancelled`. This is an await.
function HttpReader:read(fmt) end

--- Whatever body bytes come next, at most `max`; nil at the end.
--
-- **Cancel safety.** As `read`.
--
-- @tparam[opt] integer max at most this many bytes
-- @treturn ?string the bytes, or nil
-- @treturn ?string message on a failure
-- @treturn ?string code
-- @raise `Cancelled`. This is an await.
function HttpReader:read_some(max) end

--- An iterator of `read(fmt)` for a generic `for`; it raises on a failure.
--
-- **Cancel safety.** As `read`.
--
-- @param[opt] fmt a read format (default `"l"`)
-- @treturn function the iterator
-- @raise (the iterator) on a failure; `Cancelled`.
function HttpReader:lines(fmt) end

--- A response (`quench.http.response`), the second argument of a
-- handler. A handler that returns without `finish` gets one (an empty 200,
-- or what it set up).
-- @type HttpResponse

--- Set the status (default 200). Before the head is sent.
--
-- **Cancel safety.** Never waits.
--
-- @tparam integer code 200..999 (`100 Continue` is the server's)
-- @treturn HttpResponse the response
-- @raise a bad code; after the head was sent.
function HttpResponse:status(code) end

--- Add a header field (again for a repeated one). `Content-Length` sets
-- the body's length; `Connection: close` closes after this response;
-- `Transfer-Encoding` is the server's (raises).
--
-- **Cancel safety.** Never waits.
--
-- @tparam string name a token
-- @tparam string|number value no CR, LF or NUL
-- @treturn HttpResponse the response
-- @raise a bad name or value; after the head was sent.
function HttpResponse:header(name, value) end

--- Write a piece of the body, the head first: with `Content-Length` if
-- set, else chunked (HTTP/1.1) or until close (HTTP/1.0). Nothing is sent
-- for HEAD, 204 and 304.
--
-- **Cancel safety.** As `TcpStream:write`: a dropped write wrote nothing;
-- a returned one is queued whole.
--
-- * before it waits: nothing written
-- * while waiting: nothing written (it only waits while the socket's queue
--   is full); once it returned, its bytes are queued whole
-- * given, not resumed: as `TcpStream:write`
--
-- @tparam string chunk bytes
-- @treturn ?HttpResponse the response, or nil
-- @treturn ?string message (`EPIPE`, `ECONNRESET`): the client is gone
-- @treturn ?string code
-- @raise after `finish`; a non-string. This is an await.
function HttpResponse:write(chunk) end

--- End the response, with a last piece of body. Without a head sent yet,
-- `body` is the whole body and its length is sent.
--
-- **Cancel safety.** As `write`.
--
-- @tparam[opt] string body the (last) bytes
-- @treturn ?boolean true, or nil
-- @treturn ?string message
-- @treturn ?string code
-- @raise a second `finish`; a non-string. This is an await.
function HttpResponse:finish(body) end

--- Whether the head was sent (after it, status and header raise).
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean
-- @raise never.
function HttpResponse:started() end
