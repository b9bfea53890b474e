--- `require "quench.ssl"`: LuaSec's API (the `ssl` module) on quench.tls.
--
-- For code written for LuaSec over LuaSocket: `ssl.wrap` takes a
-- connected `quench.socket` client and returns an SSL object whose
-- handshake, `receive` and `send` are quench awaits (they can be aborted,
-- raced and bounded by `quench.timeout`). `quench.socket.require` gives
-- this module for `require "ssl"`, and loads lua-sec's own `ssl.https`
-- unmodified: `quench.socket.require "ssl.https"`. Results are LuaSec's:
-- `nil, "wantread"` on a timeout, `nil, "certificate verify failed"` for
-- a refused certificate. Below, `ssl` is `require "quench.ssl"`.
--
-- Guide, with every difference from LuaSec and the cancel safety:
-- [docs/io.md](../../io.md#luasec-on-quench-quenchssl).
-- @module quench.ssl

--- A context: LuaSec's parameters, checked, with the certificates and CA
-- store loaded once (a `quench.tls.context`), to give `wrap` many times.
--
-- **Cancel safety.** Never waits.
--
-- @tparam table params `mode` (`"client"` or `"server"`, required),
-- `protocol` (`"any"`, `"tlsv1_2"`, `"tlsv1_3"`), `options` (LuaSec's
-- names; `no_tlsv1_2`, `no_tlsv1_3` bound the version, the others are
-- OpenSSL 3's defaults), `verify` (`"none"`, `"peer"`,
-- `"fail_if_no_peer_cert"`, `"client_once"`; a client verifies unless told
-- `"none"`), `cafile`, `capath`, `certificate`, `key`, `password` (a
-- string or a function returning one), `ciphers`, `ciphersuites`, `alpn`
-- (a list); other keys are ignored, as LuaSec does
-- @treturn ?table the context, or nil
-- @treturn ?string `"invalid mode"`, `"invalid protocol (tlsv1)..."`,
-- `"invalid option (name)"`, OpenSSL's reason for a file it could not use
-- @raise `params` not a table
function ssl.newcontext(params) end

--- An SSL object over a connected `quench.socket` TCP client, which is
-- closed (the stream is the SSL object's now), as LuaSec leaves it. The
-- handshake is not done yet: `dohandshake` does it.
--
-- **Cancel safety.** Never waits.
--
-- @tparam table sock a connected `quench.socket` TCP client
-- @tparam table params the parameters of `newcontext`, or a context
-- @treturn ?Ssl the SSL object, or nil
-- @treturn ?string as `newcontext`; `"closed"`
-- @raise `sock` not a quench.socket TCP object; `params` not a table
function ssl.wrap(sock, params) end

--- What `require "ssl.<name>"` gives through `quench.socket.require`:
-- this module for `"ssl"`, `config` for `"ssl.config"`.
--
-- **Cancel safety.** Never waits.
--
-- @tparam string name the module name
-- @return the module
-- @raise any other `ssl.*` name (LuaSec's C parts: `ssl.core`,
-- `ssl.context`, `ssl.x509`)
function ssl.module(name) end

--- LuaSec's `x509.load`: not provided (quench.tls parses no certificate
-- it did not receive).
--
-- **Cancel safety.** Never waits.
--
-- @tparam string pem the certificate
-- @treturn nil always
-- @treturn string `"loadcertificate is not supported by quench.ssl"`
-- @raise never
function ssl.loadcertificate(pem) end

--- An SSL object (`SSL:Connection`): LuaSec's methods, and those of a
-- `quench.socket` client (`settimeout`, `getstats`, `setstats`,
-- `getpeername`, `getsockname`, `getfd`, `dirty`...). `<close>` closes it.
-- @type Ssl

--- Client: the name to send (SNI) and to verify in the server's
-- certificate. Without it, only the chain is verified (as LuaSec).
--
-- **Cancel safety.** Never waits.
--
-- @tparam string name the host name
-- @treturn boolean `true`
-- @raise not a string; on a server object (a server takes one context)
function Ssl:sni(name) end

--- Run the handshake, bounded by `settimeout` (as LuaSec: a new SSL
-- object has no timeout). A handshake that timed out or failed is never
-- resumed: the object is closed.
--
-- **Cancel safety.** A dropped handshake closes the connection.
--
-- * before it waits: nothing done
-- * while waiting: the connection is closed (a handshake never resumes
--   half done); the next call returns `nil, "closed"`
-- * given, not resumed: done: the handshake completed
--
-- @treturn ?boolean `true`, or nil
-- @treturn ?string `"wantread"` (the timeout), `"certificate verify
-- failed"`, OpenSSL's reason, `"closed"`
-- @raise outside a task. This is an await.
function Ssl:dohandshake() end

--- Receive, as `quench.socket`'s `receive` (`"*l"`, `"*a"`, a count, a
-- prefix), after the handshake.
--
-- **Cancel safety.** As `Socket:receive`: nothing lost.
--
-- * before it waits: nothing received
-- * while waiting: nothing lost: bytes received so far stay in the object, the
--   rest in the stream; the next `receive` starts with them
-- * given, not resumed: nothing lost
--
-- @tparam[opt="*l"] string|integer pattern the pattern
-- @tparam[opt] string prefix put before the result
-- @treturn ?string the data, or nil
-- @treturn ?string `"wantread"` (the timeout), `"closed"`, OpenSSL's reason
-- @treturn ?string the partial data
-- @raise a bad pattern; outside a task. This is an await.
function Ssl:receive(pattern, prefix) end

--- Send, as `quench.socket`'s `send`, after the handshake: the index of
-- the last byte sent.
--
-- **Cancel safety.** As `Socket:send`: all or nothing.
--
-- * before it waits: nothing sent
-- * while waiting: nothing sent (it only waits while the write queue is full)
-- * given, not resumed: nothing sent; once `send` returned, its bytes are
--   encrypted and queued whole
--
-- @tparam string data the bytes
-- @tparam[opt=1] integer i first index
-- @tparam[opt=-1] integer j last index
-- @treturn ?integer the last index sent, or nil
-- @treturn ?string `"wantwrite"` (the timeout), `"closed"`
-- @treturn ?integer the last index sent before the error
-- @raise bad arguments; outside a task. This is an await.
function Ssl:send(data, i, j) end

--- Close (close_notify goes out after what is queued, best effort).
--
-- **Cancel safety.** Never waits.
--
-- @raise never
function Ssl:close() end

--- The peer's certificate, as LuaSec's x509 object (`SSL:Certificate`):
-- `pem()`, `subject()`, `issuer()` (lists of `{oid, name, value}`),
-- `serial()`, `notbefore()`, `notafter()`, `validat(t)`, `digest(alg)`
-- (`"sha1"` by default, `"sha256"`, `"md5"`), `extensions()` (the subject
-- alternative names).
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt=0] integer n the depth: only 0 (the peer's own) is kept
-- @treturn ?table the certificate, or nil
-- @raise never
function Ssl:getpeercertificate(n) end

--- `{certificate}`: the peer's own certificate only (the chain is not kept).
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?table the list, or nil
-- @raise never
function Ssl:getpeerchain() end

--- Whether the peer was verified: `true`, or `false, {[0] = {reason}}`
-- (why the handshake refused it, or that verification was off).
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean verified
-- @treturn ?table the reasons, by depth
-- @raise never
function Ssl:getpeerverification() end

--- The connection: `{protocol, cipher, bits, algbits}`, or one field.
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt] string field a field name
-- @treturn ?table|string|integer the table or the field; nil before the handshake
-- @raise never
function Ssl:info(field) end

--- The protocol ALPN chose, or nil.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?string the protocol
-- @raise never
function Ssl:getalpn() end

--- Server: the name the client asked for (SNI), or nil.
--
-- **Cancel safety.** Never waits.
--
-- @treturn ?string the name
-- @raise never
function Ssl:getsniname() end

--- The Finished message: always nil (quench.tls does not give it; no
-- tls-unique channel binding).
--
-- **Cancel safety.** Never waits.
--
-- @treturn nil always
-- @raise never
function Ssl:getfinished() end

--- The peer's Finished message: always nil, as `getfinished`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn nil always
-- @raise never
function Ssl:getpeerfinished() end

--- Our own certificate: always nil (not kept).
--
-- **Cancel safety.** Never waits.
--
-- @treturn nil always
-- @raise never
function Ssl:getlocalcertificate() end

--- Our own chain: always nil (not kept).
--
-- **Cancel safety.** Never waits.
--
-- @treturn nil always
-- @raise never
function Ssl:getlocalchain() end

--- What the last call waits for: always `"nothing"` (a quench wait never
-- returns half done).
--
-- **Cancel safety.** Never waits.
--
-- @treturn string `"nothing"`
-- @raise never
function Ssl:want() end

--- DANE: not supported.
--
-- **Cancel safety.** Never waits.
--
-- @treturn nil always
-- @treturn string the reason
-- @raise never
function Ssl:setdane() end

--- DANE TLSA records: not supported.
--
-- **Cancel safety.** Never waits.
--
-- @treturn nil always
-- @treturn string the reason
-- @raise never
function Ssl:settlsa() end

--- Whether received data waits in the object or the stream.
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean
-- @raise never
function Ssl:dirty() end

--- A certificate (`SSL:Certificate`), LuaSec's x509 object, from
-- `Ssl:getpeercertificate`. Read from what quench.tls gives
-- (`TlsStream:peer_certificate`).
-- @type SslCertificate

--- The certificate in PEM.
--
-- **Cancel safety.** Never waits.
--
-- @treturn string the PEM text
-- @raise never
function SslCertificate:pem() end

--- The subject name: a list of `{oid, name, value}` in the certificate's
-- order (`{oid = "2.5.4.3", name = "commonName", value = "localhost"}`).
--
-- **Cancel safety.** Never waits.
--
-- @treturn table the list
-- @raise never
function SslCertificate:subject() end

--- The issuer name, as `subject`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn table the list
-- @raise never
function SslCertificate:issuer() end

--- The serial number in upper-case hex.
--
-- **Cancel safety.** Never waits.
--
-- @treturn string the serial
-- @raise never
function SslCertificate:serial() end

--- When it becomes valid, as LuaSec prints it (`"Dec  6 02:32:06 2026 GMT"`).
--
-- **Cancel safety.** Never waits.
--
-- @treturn string the time
-- @raise never
function SslCertificate:notbefore() end

--- When it expires, as `notbefore`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn string the time
-- @raise never
function SslCertificate:notafter() end

--- Whether it is valid at time `t` (seconds since the epoch).
--
-- **Cancel safety.** Never waits.
--
-- @tparam number t the time
-- @treturn boolean
-- @raise `t` not a number
function SslCertificate:validat(t) end

--- The fingerprint in lower-case hex.
--
-- **Cancel safety.** Never waits.
--
-- @tparam[opt="sha1"] string alg `"sha1"`, `"sha256"` or `"md5"`
-- @treturn string the hex digest
-- @raise another algorithm
function SslCertificate:digest(alg) end

--- The extensions: the subject alternative names only, as LuaSec gives
-- them: `{["2.5.29.17"] = {name =, dNSName = {...}, iPAddress = {...},
-- uniformResourceIdentifier = {...}, rfc822Name = {...}}}`.
--
-- **Cancel safety.** Never waits.
--
-- @treturn table the extensions
-- @raise never
function SslCertificate:extensions() end

--- Not supported.
--
-- **Cancel safety.** Never waits.
--
-- @treturn nil always
-- @treturn string the reason
-- @raise never
function SslCertificate:pubkey() end

--- Not supported.
--
-- **Cancel safety.** Never waits.
--
-- @treturn nil always
-- @treturn string the reason
-- @raise never
function SslCertificate:getsignaturename() end

--- Not supported.
--
-- **Cancel safety.** Never waits.
--
-- @treturn nil always
-- @treturn string the reason
-- @raise never
function SslCertificate:issued() end

--- Does nothing (the values are UTF-8 already).
--
-- **Cancel safety.** Never waits.
--
-- @treturn boolean `true`
-- @raise never
function SslCertificate:setencode() end
