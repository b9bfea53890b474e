--- quench.ngx: OpenResty's cosocket API and `ngx` helpers on quench.
--
-- `local ngxq = require "quench.ngx"`; `ngxq.install()` makes `ngx` and
-- `unpack` globals and lets `require "resty.redis"` find Debian's
-- OpenResty drivers, which then run unmodified on quench tasks. Every
-- call that waits is a quench wait: it can be aborted, raced and bounded
-- by `quench.timeout`. What exists, what does not (request phases,
-- `ngx.shared`, most of the FFI) and how it differs from OpenResty:
-- [docs/openresty.md](../../openresty.md).
-- @module ngx
-- @field ngx.null a light userdata (NULL), OpenResty's and lua-cjson's null
-- @field ngx.ERR log levels `ngx.STDERR` (0), `EMERG`, `ALERT`, `CRIT`,
-- `ERR` (4), `WARN`, `NOTICE`, `INFO`, `DEBUG` (8)

--- Make `ngx` and `unpack` globals and add a `require "resty.X"` searcher.
--
-- The searcher loads `X` from `/usr/share/lua/5.1/nginx/?.lua`, then
-- `/usr/share/lua/5.1/?.lua` (where Debian's `lua-nginx-*` packages put
-- them); another finds `"nginx.X"` there (Debian's name for a driver's
-- own modules). `require "bit"` and `require "ffi"` give `quench.bit` and
-- `quench.ffi` unless such modules are installed. Idempotent. Call it before requiring a driver: drivers read
-- `ngx` when they load.
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt] table opts `resty_path` (a `;`-separated template list,
-- or `false` for no searcher), `log_level` (the most verbose level
-- `ngx.log` writes, default `ngx.ERR`), `ssl_trusted_certificate`,
-- `timer_grace` (seconds premature timers may go on at the end of a run,
-- default 3)
-- @treturn table the `ngx` table
-- @raise `bad argument #1 to 'quench.ngx.install' (unknown option ...)`
-- @usage require("quench.ngx").install(); local redis = require "resty.redis"
function ngxq.install(opts) end

--- A new TCP cosocket (not connected).
--
-- **Cancel safety.** Never waits.
--
-- @treturn NgxTcp the socket
-- @raise never
function ngx.socket.tcp() end

--- A new UDP cosocket (no peer yet).
--
-- **Cancel safety.** Never waits.
--
-- @treturn NgxUdp the socket
-- @raise never
function ngx.socket.udp() end

--- Sleep `s` seconds without blocking other tasks (`quench.sleep`).
--
-- **Cancel safety.** As `quench.sleep`: nothing is lost.
--
-- * before it waits: nothing done
-- * while waiting: nothing lost (the timer is removed)
-- * given, not resumed: nothing lost
--
-- @tparam number s seconds
-- @raise outside a task. This is an await.
function ngx.sleep(s) end

--- Wall-clock seconds since the epoch, with milliseconds.
--
-- **Cancel safety.** Never waits.
--
-- @treturn number seconds
-- @raise never
function ngx.now() end

--- Wall-clock whole seconds since the epoch.
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer seconds
-- @raise never
function ngx.time() end

--- Does nothing: `ngx.now` reads the clock on every call.
--
-- **Cancel safety.** Never waits.
--
-- @raise never
function ngx.update_time() end

--- Today's local date, `"YYYY-MM-DD"`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn string
-- @raise never
function ngx.today() end

--- The local time, `"YYYY-MM-DD hh:mm:ss"`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn string
-- @raise never
function ngx.localtime() end

--- The UTC time, `"YYYY-MM-DD hh:mm:ss"`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn string
-- @raise never
function ngx.utctime() end

--- Log the arguments (concatenated; `nil` as `"nil"`, `ngx.null` as
-- `"null"`) at `level`, when `level` is at most `ngxq.log_level`, through
-- `ngxq.log_sink(level, msg)` (default: a line on stderr).
--
-- **Cancel safety.** Never waits.
--
-- @tparam integer level `ngx.ERR` etc.
-- @param ... values
-- @raise `bad argument #1 to 'log' (a log level such as ngx.ERR expected,
-- got ...)`
function ngx.log(level, ...) end

--- Call `callback(false, ...)` in a new detached task after `delay` seconds.
-- A timer still pending when the run ends (its main function returned or
-- raised) is called as `callback(true, ...)` then, in a task of its own
-- (started in the order the timers were made), before the tasks left are
-- aborted. It may wait (cosocket I/O, `ngx.sleep`): the run goes on until
-- the premature callbacks are done, at most `timer_grace` seconds
-- (`install`, default 3); those still running then are aborted and logged
-- at `ngx.ERR`. An error a callback raises is logged at `ngx.ERR`.
--
-- **Cancel safety.** Never waits.
--
-- @tparam number delay seconds (>= 0)
-- @tparam function callback
-- @param ... its extra arguments
-- @treturn boolean|nil `true`, or `nil` while the run is ending
-- @treturn[opt] string `"process exiting"`
-- @raise `bad argument #1 to 'timer.at' (...)`, `bad argument #2 ...`;
-- outside a runtime
function ngx.timer.at(delay, callback, ...) end

--- `false`, but `true` while the pending `ngx.timer.at` callbacks are
-- called with `premature = true` at the end of a run.
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean
-- @raise never
function ngx.worker.exiting() end

--- Always `0`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer 0
-- @raise never
function ngx.worker.id() end

--- Always `1`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn integer 1
-- @raise never
function ngx.worker.count() end

--- Escape a URI component: all but `A-Z a-z 0-9 - . _ ~` as `%XX`.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string|number|nil s (`nil` gives `""`)
-- @treturn string
-- @raise `bad argument #1 to 'escape_uri' (string expected, got ...)`
function ngx.escape_uri(s) end

--- Unescape a URI component: `%XX` and `+` (a space); a malformed `%` stays.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string|number|nil s (`nil` gives `""`)
-- @treturn string
-- @raise `bad argument #1 to 'unescape_uri' (string expected, got ...)`
function ngx.unescape_uri(s) end

--- Base64 (RFC 4648) of `s`.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string s
-- @tparam[opt] boolean no_padding leave out the `=` padding
-- @treturn string
-- @raise `bad argument #1 to 'encode_base64' (string expected, got ...)`
function ngx.encode_base64(s, no_padding) end

--- Decode base64, with or without padding.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string s
-- @treturn ?string the bytes, or `nil` when `s` is not well-formed
-- @raise `bad argument #1 to 'decode_base64' (string expected, got ...)`
function ngx.decode_base64(s) end

--- MD5 of `s`, 32 hexadecimal digits (OpenSSL's libcrypto).
--
-- **Cancel safety.** Never waits.
--
-- @tparam string s
-- @treturn string
-- @raise a non-string argument
function ngx.md5(s) end

--- MD5 of `s`, 16 bytes.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string s
-- @treturn string
-- @raise a non-string argument
function ngx.md5_bin(s) end

--- SHA-1 of `s`, 20 bytes.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string s
-- @treturn string
-- @raise a non-string argument
function ngx.sha1_bin(s) end

--- CRC-32 (IEEE, zlib's) of `s`.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string s
-- @treturn integer
-- @raise `bad argument #1 to 'crc32' (string expected, got ...)`
function ngx.crc32_short(s) end

--- As `crc32_short` (nginx only picks another loop for long input).
--
-- **Cancel safety.** Never waits.
--
-- @tparam string s
-- @treturn integer
-- @raise as `crc32_short`
function ngx.crc32_long(s) end

--- The first match of a PCRE regex (`ngx.re`, on PCRE2 through Debian's
-- lua-rex-pcre2, loaded at first use). Options: OpenResty's letters
-- (`i`, `m`, `s`, `x`, `u`, `a` anchored, `D`; `j`, `o` change nothing:
-- every regex is cached).
--
-- **Cancel safety.** Never waits.
--
-- @tparam string subject the text
-- @tparam string regex the PCRE regex
-- @tparam[opt] string options the option letters
-- @tparam[opt] table ctx `pos`: where to start; set after the match
-- @tparam[opt] table res a table to fill instead of a new one
-- @treturn ?table the captures: `[0]` the match, `[1]`..., and named
-- ones; `false` for a capture that took no part; nil if no match
-- @treturn ?string `"failed to compile regex ..."`
-- @raise a bad argument or option letter; lua-rex-pcre2 missing
function ngx.re.match(subject, regex, options, ctx, res) end

--- Where the first match is, as `ngx.re.match` finds it.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string subject the text
-- @tparam string regex the PCRE regex
-- @tparam[opt] string options the option letters
-- @tparam[opt] table ctx `pos`: where to start; set after the match
-- @tparam[opt=0] integer nth which capture's place (0: the whole match)
-- @treturn ?integer from, or nil
-- @treturn ?integer to
-- @treturn ?string the compile error
-- @raise as `ngx.re.match`
function ngx.re.find(subject, regex, options, ctx, nth) end

--- An iterator over the matches (each a captures table).
--
-- **Cancel safety.** Never waits.
--
-- @tparam string subject the text
-- @tparam string regex the PCRE regex
-- @tparam[opt] string options the option letters
-- @treturn ?function the iterator, or nil
-- @treturn ?string the compile error
-- @raise as `ngx.re.match`
function ngx.re.gmatch(subject, regex, options) end

--- Replace the first match: by a template (`$0`, `$1`, `${name}`, `$$`)
-- or by a function of the captures table.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string subject the text
-- @tparam string regex the PCRE regex
-- @tparam string|function replace the template or function
-- @tparam[opt] string options the option letters
-- @treturn ?string the new text, or nil
-- @treturn ?integer the number of replacements (0 or 1)
-- @treturn ?string the compile error
-- @raise as `ngx.re.match`; a function returning no string
function ngx.re.sub(subject, regex, replace, options) end

--- Replace every match, as `ngx.re.sub`.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string subject the text
-- @tparam string regex the PCRE regex
-- @tparam string|function replace the template or function
-- @tparam[opt] string options the option letters
-- @treturn ?string the new text, or nil
-- @treturn ?integer the number of replacements
-- @treturn ?string the compile error
-- @raise as `ngx.re.sub`
function ngx.re.gsub(subject, regex, replace, options) end

--- A TCP cosocket (`ngx.socket.tcp()`), over a quench stream.
--
-- Errors are OpenResty's: `nil, "timeout" | "closed" | message [, partial]`.
-- A read timeout leaves the socket open; any other error closes it. A wait
-- that is dropped closes the connection at once.
-- @type NgxTcp

--- Connect, or take an idle connection from the pool.
--
-- **Cancel safety.** Dropped while connecting: the half-made connection is
-- closed (as `quench.tcp.connect`). A pooled connection is taken without
-- waiting.
--
-- * before it waits: nothing done
-- * while waiting: the half-made connection is closed; a pooled
--   connection is taken without waiting; a connect queued by `backlog`
--   leaves the queue (its place goes to the next)
-- * given, not resumed: the new connection is closed
--
-- With `opts.backlog`, at most `opts.pool_size` (default 30) connections
-- of the pool exist at once (in use or idle in the pool); a connect beyond
-- that waits in a queue of at most `backlog` connects, FIFO, until one is
-- closed or kept alive (at most the connect timeout: `nil, "timeout"`);
-- beyond `backlog` it fails at once: `nil, "too many waiting connect
-- operations"`. The first connect with a backlog sets the pool's limits.
--
-- @tparam string host a host, or `"unix:/path"` (then no port)
-- @tparam[opt] integer port
-- @tparam[opt] table opts `pool` (the pool's name, default `"host:port"`),
-- `pool_size`, `backlog` (connect queueing, above)
-- @treturn ?integer `1`
-- @treturn ?string `"timeout"`, `"connection refused"`, `"too many waiting
-- connect operations"`, ...
-- @raise a bad host, port or options (`opts.backlog` an integer >= 0,
-- `opts.pool_size` >= 1); outside a task. This is an await.
function NgxTcp:connect(host, port, opts) end

--- Set the connect, send and read timeouts at once.
--
-- **Cancel safety.** Never waits.
--
-- @tparam ?number ms milliseconds; `0` or `nil`: 60 s; a table: 60 s too,
-- as OpenResty (with an `ngx.WARN` log line)
-- @raise a negative value, or a non-numeric one other than a table
function NgxTcp:settimeout(ms) end

--- Set the connect, send and read timeouts each.
--
-- **Cancel safety.** Never waits.
--
-- @tparam ?number connect_ms
-- @tparam ?number send_ms
-- @tparam ?number read_ms
-- @raise a negative or non-numeric value
function NgxTcp:settimeouts(connect_ms, send_ms, read_ms) end

--- Send a string, a number, a boolean, or an array of them (nested at will).
--
-- **Cancel safety.** Dropped while waiting (only above the stream's write
-- limit): the connection is closed.
--
-- * before it waits: nothing sent
-- * while waiting: **the connection is closed** at once (the request may be
--   half-sent); the object returns `nil, "closed"` from then on
-- * given, not resumed: the same
--
-- @param data
-- @treturn ?integer the number of bytes
-- @treturn ?string `"timeout"`, `"closed"`, ...
-- @raise a value of another type in `data`; outside a task. This is an await.
function NgxTcp:send(data) end

--- Receive a line (`"*l"`, the default), everything (`"*a"`) or a count.
--
-- **Cancel safety.** Dropped while waiting: nothing was consumed, and the
-- connection is closed at once (the answer still coming is never read as
-- another's).
--
-- * before it waits: nothing read
-- * while waiting: **the connection is closed** at once: the answer still on
--   its way is never read as another's
-- * given, not resumed: the same
--
-- @param[opt] pattern `"*l"`, `"*a"`, or a count (a number or numeric string)
-- @treturn ?string the data
-- @treturn ?string `"timeout"`, `"closed"`, ...
-- @treturn ?string the partial data
-- @raise `bad argument #2 to 'receive' (bad pattern argument: ...)`;
-- outside a task. This is an await.
function NgxTcp:receive(pattern) end

--- Receive whatever has arrived: at least one byte, at most `max`.
--
-- **Cancel safety.** As `receive`.
--
-- @tparam integer max
-- @treturn ?string the data
-- @treturn ?string `"timeout"`, `"closed"`, ...
-- @raise `bad argument #2 to 'receiveany' (bad max argument: ...)`;
-- outside a task. This is an await.
function NgxTcp:receiveany(max) end

--- An iterator reading up to `pattern` (plain text).
--
-- `reader([size])` returns the data before the next `pattern`; with
-- `size`, at most `size` bytes a call, then `nil` (no error) once the
-- pattern is passed. Bytes read past the pattern go to the next read.
--
-- **Cancel safety.** Making the iterator never waits; a call of it is as
-- `receive`.
--
-- @tparam string pattern non-empty
-- @tparam[opt] table opts `inclusive`: keep the pattern in the data
-- @treturn function the reader
-- @raise `bad argument #2 to 'receiveuntil' (pattern must be a non-empty
-- string)`; the reader raises on a bad size and outside a task
function NgxTcp:receiveuntil(pattern, opts) end

--- Close the connection.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?integer `1`
-- @treturn ?string `"closed"` when it was not connected
-- @raise never on a socket
function NgxTcp:close() end

--- Put the connection in the pool, and close the object.
--
-- Refused (the connection is closed instead) when bytes are unread, a
-- call on it timed out, or the peer wrote or closed meanwhile.
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt] number max_idle_ms default 60 s; `0`: no limit
-- @tparam[opt] integer pool_size default 30
-- @treturn ?integer `1`
-- @treturn ?string `"connection in dubious state"`, `"closed"`
-- @raise a bad timeout or size
function NgxTcp:setkeepalive(max_idle_ms, pool_size) end

--- How many times this connection came from the pool (0: a new one).
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?integer
-- @treturn ?string `"closed"`
-- @raise never on a socket
function NgxTcp:getreusedtimes() end

--- TLS over the connection, with `quench.tls`.
--
-- **Cancel safety.** Dropped while waiting: the connection is closed.
--
-- * before it waits: nothing done
-- * while waiting: the connection is closed
-- * given, not resumed: the same
--
-- @param reused_session ignored
-- @tparam[opt] string server_name SNI and the name checked
-- @tparam[opt] boolean verify verify the certificate
-- @treturn ?boolean `true`
-- @treturn ?string the error
-- @raise a non-string server name; outside a task. This is an await.
function NgxTcp:sslhandshake(reused_session, server_name, verify) end

--- Accepted and ignored.
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean `true`
-- @raise never
function NgxTcp:setoption() end

--- A UDP cosocket (`ngx.socket.udp()`).
-- @type NgxUdp

--- Set the peer (a name is resolved once) and bind a local socket; or,
-- for `"unix:/path"`, connect an unnamed Unix datagram socket to the path
-- (`quench.unix.dgram`; `port` is not given).
--
-- **Cancel safety.** Dropped while resolving: nothing is bound.
--
-- * before it waits: nothing done
-- * while waiting: nothing is bound (the lookup is cancelled or freed)
-- * given, not resumed: nothing is bound
--
-- @tparam string host an address, a name, or `"unix:/path"`
-- @tparam[opt] integer port the port (not for a Unix path)
-- @treturn ?integer `1`
-- @treturn ?string the error
-- @raise a bad host or port; outside a task. This is an await.
function NgxUdp:setpeername(host, port) end

--- Send a datagram to the peer.
--
-- **Cancel safety.** As `quench.udp`'s `send`: whole and once, or not at all.
--
-- * before it waits: nothing sent
-- * while waiting: the datagram may still go out, whole and once, or not
--   at all
-- * given, not resumed: sent, once
--
-- @param data as `NgxTcp:send`
-- @treturn ?integer `1`
-- @treturn ?string the error
-- @raise a bad data type; outside a task. This is an await.
function NgxUdp:send(data) end

--- The next datagram from the peer (others are dropped).
--
-- **Cancel safety.** Nothing lost: a datagram stays queued.
--
-- * before it waits: nothing taken
-- * while waiting: nothing taken: datagrams stay queued
-- * given, not resumed: nothing lost: the datagram goes back to the queue
--
-- @tparam[opt] integer size at most this many bytes (default 8192)
-- @treturn ?string the datagram
-- @treturn ?string `"timeout"`, `"closed"`, ...
-- @raise a bad size; outside a task. This is an await.
function NgxUdp:receive(size) end

--- The timeout of `setpeername`, `send` and `receive`.
--
-- **Cancel safety.** Never waits.
--
-- @tparam ?number ms milliseconds; `0` or `nil`: 60 s
-- @raise a negative or non-numeric value
function NgxUdp:settimeout(ms) end

--- Close the socket.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?integer `1`
-- @treturn ?string `"closed"`
-- @raise never on a socket
function NgxUdp:close() end
