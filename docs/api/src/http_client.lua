--- HTTP client: `quench.http.request`, on libcurl.
--
-- libcurl's multi-socket API runs on the runtime's libuv loop (one multi
-- handle per runtime, made at the first request, cleaned up when
-- `quench.run` returns): HTTP/1.1 and HTTP/2, TLS, proxies, redirects,
-- decompression and connection reuse are libcurl's. A request dropped
-- before it returns (a `quench.timeout`, a select, an abort) stops its
-- transfer at once and closes its connection; a response's body streams
-- with backpressure.
--
-- The client's timeouts (`opts.timeout`) run on the real clock: under the
-- virtual clock, a `quench.timeout` around a request jumps ahead and fires
-- before the network answers, so code that makes requests runs on the real
-- clock.
--
-- Guide, with the cancel-safety table: [docs/http.md](../../http.md#the-client).
-- @module http_client

--- Send an HTTP request; return once the final response's head is in
-- (redirects followed, `1xx` heads skipped). The body is then read from
-- the response.
--
-- Options (a string is `{url = string}`): `url` (`http://` or `https://`),
-- `method` (default `"GET"`, or `"POST"` with a body), `headers` (name ->
-- value, or name -> list of values; CR, LF and NUL are refused), `body` (a
-- string, or a reader function called for each next chunk until it returns
-- nil: it may wait, and the body is sent chunked), `timeout` (seconds for
-- the whole transfer, or `{connect =, total =}`; connect defaults to 30),
-- `redirects` (how many to follow, default 5; 0 returns the `3xx`),
-- `max_body` (the most `response:body()` takes, default 8 MiB), TLS:
-- `verify` (default true: the peer's certificate and name), `cafile`,
-- `capath`, `certificate` and `key` (a client certificate), `password`
-- (of the key); `proxy` (a URL), `http_version` (`"1.1"` or `"2"`, which
-- falls back to 1.1 where the server does not offer it), `decompress`
-- (default true: gzip, deflate, br, zstd).
--
-- **Cancel safety.** Safe: a dropped request stops its transfer at once
-- (libcurl removes it and closes its connection rather than reuse it
-- half-read); nothing is delivered afterwards. The server sees the
-- connection close (a quench server cancels the request's handler).
--
-- * before it waits: nothing sent
-- * while waiting: the transfer is stopped and its connection closed; the
--   bytes of a streamed body already fed are gone with it
-- * given, not resumed: the transfer is stopped and its connection closed
--   (the response was not returned)
--
-- @tparam string|table opts a URL, or the options above
-- @treturn ?HttpClientResponse the response, or nil
-- @treturn ?string message: `ECONNREFUSED`, `ETIMEDOUT` (opts.timeout),
-- `EAI_NONAME`, `ETLS_VERIFY` (a certificate that does not verify),
-- `ETLS_HANDSHAKE`, `EREDIRECTS` (more than `redirects`), `EOF` (the
-- server closed without an answer), `EPROTO`, `EHTTP` (another libcurl
-- failure), each with libcurl's words after it
-- @treturn ?string code
-- @raise a bad option (naming `quench.http.request` and the option: a URL
-- libcurl cannot parse, an unknown option, a bad header...); outside a
-- runtime; the body reader's error; `Cancelled`. This is an await.
-- @usage local res = assert(quench.http.request("https://example.org/"))
-- print(res.status, res.headers["content-type"], res:body())
function quench.http.request(opts) end

--- A response of `quench.http.request`. Fields: `status` (integer),
-- `headers` (case-insensitive: repeated fields joined with `", "`; `pairs`
-- walks every field in order, as sent), `version` (`"1.0"`, `"1.1"` or
-- `"2"`), `url` (the last one, after redirects). It owns its transfer:
-- `close` it (or hold it in a `<close>` variable) to stop a body nobody
-- will read; garbage collection and the end of `quench.run` do too.
-- @type HttpClientResponse

--- The whole body, at most the request's `max_body` bytes.
--
-- **Cancel safety.** Safe: what it received is kept in the response, and
-- a later `body()` goes on from there.
--
-- * before it waits: nothing taken
-- * while waiting: the bytes received so far stay in the response
-- * given, not resumed: the body stays in the response (`body()` returns it)
--
-- @treturn ?string the body (`""` if none), or nil
-- @treturn ?string message: `EMSGSIZE` over `max_body` (the transfer is
-- then stopped), `ETIMEDOUT`, `EOF` (the server closed inside the body),
-- `ECANCELED` (the response was closed), or as `request`'s
-- @treturn ?string code
-- @raise when a reader is reading the body; `Cancelled`. This is an await.
function HttpClientResponse:body() end

--- A reader of the body, for streaming: its reads take the body as it
-- arrives. Past 64 KiB unread, the transfer pauses (libcurl's
-- `CURLPAUSE`) until the reader catches up.
--
-- **Cancel safety.** Never waits; the reader's reads wait, and keep what
-- they received in the reader.
--
-- @treturn HttpBodyReader the reader (the same one each time)
-- @raise when `body()` already read the body.
function HttpClientResponse:reader() end

--- One header's value: repeated fields joined with `", "`; nil if absent.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string name any case
-- @treturn ?string the value
-- @raise a non-string name.
function HttpClientResponse:header(name) end

--- Every value of a header, in order (`Set-Cookie`...).
--
-- **Cancel safety.** Never waits.
--
-- @tparam string name any case
-- @treturn {string,...} the values (empty if none)
-- @raise a non-string name.
function HttpClientResponse:header_all(name) end

--- Stop the transfer if it still runs (its connection closed, nothing
-- delivered afterwards); reads then return `ECANCELED`. Also `__close`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean true
-- @raise never.
function HttpClientResponse:close() end

--- A streaming reader of a response body, from `response:reader()`.
-- @type HttpBodyReader

--- Read from the body: `n` bytes (fewer only at its end), a line without
-- (`"l"`, the default) or with (`"L"`) its `"\n"`, or the rest (`"a"`).
--
-- **Cancel safety.** Safe: bytes received stay in the reader's buffer.
--
-- * before it waits: nothing taken
-- * while waiting: the bytes received so far stay in the reader
-- * given, not resumed: the bytes stay in the reader for the next read
--
-- @param[opt] fmt a count, `"l"`, `"L"` or `"a"`
-- @treturn ?string the bytes; nil at the end (`"a"`: `""`)
-- @treturn ?string message on a failure (as `body()`)
-- @treturn ?string code
-- @raise a bad format; `Cancelled`. This is an await.
function HttpBodyReader:read(fmt) end

--- Whatever body bytes come next, at most `max` (default 64 KiB); nil at
-- the end.
--
-- **Cancel safety.** As `read`.
--
-- @tparam[opt] integer max at most this many bytes
-- @treturn ?string the bytes, or nil
-- @treturn ?string message on a failure
-- @treturn ?string code
-- @raise a bad `max`; `Cancelled`. This is an await.
function HttpBodyReader:read_some(max) end

--- An iterator of `read(fmt)` for a generic `for`; it raises on a failure.
--
-- **Cancel safety.** As `read`.
--
-- @param[opt] fmt a read format (default `"l"`)
-- @treturn function the iterator
-- @raise (the iterator) on a failure; `Cancelled`.
function HttpBodyReader:lines(fmt) end
