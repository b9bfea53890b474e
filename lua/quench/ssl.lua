-- module quench.ssl
-- quench.ssl: LuaSec's API (the `ssl` module) on quench.tls, for code
-- written for LuaSec over LuaSocket: `ssl.wrap(sock, params)` takes a
-- quench.socket client and returns an SSL object whose handshake, receive
-- and send are quench awaits (they can be aborted, raced and bounded by
-- quench.timeout). quench.socket's loader gives this module for
-- `require "ssl"`, and loads LuaSec's own `ssl.https` file unmodified
-- through it: `quench.socket.require "ssl.https"`. Guide: docs/io.md
-- ("LuaSec on quench"), which lists every difference from LuaSec.
--
-- An SSL object is a quench.socket client whose stream went through
-- `starttls`: it shares quench.socket's receive and send (its buffer, its
-- timeouts, its cancel safety), with LuaSec's words for a timeout
-- ("wantread", "wantwrite") and LuaSec's extra methods.
-- Embedded in quench.so (its first line makes luaopen_quench register it
-- in package.preload, compiled on first require), and installed as a file.
local quench = require "quench"
local qsocket = require "quench.socket"

local I = qsocket._internal
local common, stream_methods = I.common, I.stream_methods
local wait_limit, bounded, in_task = I.wait_limit, I.bounded, I.in_task

local M = {
  _VERSION = "1.2.0",
  _COPYRIGHT = "LuaSec's API on quench.tls (quench.ssl)",
}

local fmt = string.format

---------------------------------------------------------------------------
-- contexts

-- LuaSec's option names (ssl/options.lua) that quench accepts: those
-- OpenSSL 3 applies by default or that change nothing TLS 1.2+ does, and
-- the two that bound the protocol version.
local OPTIONS = {}
for name in ([[all no_sslv2 no_sslv3 no_tlsv1 no_tlsv1_1 no_compression
  single_ecdh_use single_dh_use cipher_server_preference no_ticket
  no_session_resumption_on_renegotiation no_renegotiation allow_no_dhe_kex
  prioritize_chacha ignore_unexpected_eof legacy_server_connect
  tls_rollback_bug dont_insert_empty_fragments microsoft_sess_id_bug
  netscape_challenge_bug ssleay_080_client_dh_bug tls_d5_bug tls_block_padding_bug
  no_query_mtu cookie_exchange no_tlsv1_2 no_tlsv1_3]]):gmatch("[%w_]+") do
  OPTIONS[name] = true
end

local PROTOCOLS = {
  any = { nil, nil }, sslv23 = { nil, nil }, tlsv1_2 = { "TLSv1.2", "TLSv1.2" },
  tlsv1_3 = { "TLSv1.3", "TLSv1.3" },
}

local VERIFY = {
  none = true, peer = true, client_once = true, fail_if_no_peer_cert = true,
}

local Context = { __name = "SSL:Context" }
Context.__index = Context
Context.__tostring = function(c) return fmt("SSL context: %s", c.mode) end

local function list_of(v)
  if v == nil then return {} end
  if type(v) == "string" then return { v } end
  if type(v) == "table" then return v end
  return nil
end

local function config_error(msg)
  -- quench.tls says "ETLS_CONFIG: opts.key: cannot use ...": LuaSec says
  -- "error loading private key (...)"
  msg = tostring(msg):gsub("^ETLS_[%u_]+: ", "")
  return msg
end

--- newcontext(params): a context (certificates and CA store loaded once),
-- or nil, msg. Keys LuaSec knows and quench does not use are ignored;
-- see docs/io.md for each.
function M.newcontext(cfg)
  if type(cfg) ~= "table" then
    error("bad argument #1 to 'newcontext' (table expected, got " .. type(cfg) .. ")", 2)
  end
  local mode = cfg.mode
  if mode ~= "client" and mode ~= "server" then return nil, "invalid mode" end
  local proto = PROTOCOLS[cfg.protocol or "any"]
  if proto == nil then
    return nil, fmt("invalid protocol (%s): quench.ssl speaks tlsv1_2, tlsv1_3 or any",
                    tostring(cfg.protocol))
  end
  local min, max = proto[1], proto[2]
  local options = list_of(cfg.options)
  if options == nil then return nil, "invalid options (a string or a list expected)" end
  for _, o in ipairs(options) do
    if not OPTIONS[o] then return nil, fmt("invalid option (%s)", tostring(o)) end
    if o == "no_tlsv1_2" then min = "TLSv1.3" end
    if o == "no_tlsv1_3" then max = "TLSv1.2" end
  end
  local ignore_eof = false
  for _, o in ipairs(options) do
    if o == "ignore_unexpected_eof" then ignore_eof = true end
  end
  if min and max and min > max then return nil, "no protocol left (options exclude them all)" end
  local verify_list = list_of(cfg.verify)
  if verify_list == nil then return nil, "invalid verify option (a string or a list expected)" end
  local flags = {}
  for _, v in ipairs(verify_list) do
    if not VERIFY[v] then return nil, fmt("invalid verify option (%s)", tostring(v)) end
    flags[v] = true
  end
  if cfg.verifyext ~= nil then
    return nil, "verifyext is not supported by quench.ssl (a failed verification ends the handshake)"
  end
  if type(cfg.alpn) == "function" then
    return nil, "an alpn callback is not supported by quench.ssl (give a list)"
  end
  if cfg.dane then return nil, "dane is not supported by quench.ssl" end
  local password = cfg.password
  if type(password) == "function" then password = password() end
  if password ~= nil and type(password) ~= "string" then
    return nil, "invalid password (a string or a function returning one expected)"
  end

  local opts = {
    cafile = cfg.cafile, capath = cfg.capath, certificate = cfg.certificate, key = cfg.key,
    password = password, ciphers = cfg.ciphers, ciphersuites = cfg.ciphersuites,
    alpn = cfg.alpn, min_version = min, max_version = max,
    ignore_unexpected_eof = ignore_eof or nil,
  }
  local verifies
  if mode == "server" then
    if cfg.certificate == nil or cfg.key == nil then
      return nil, "a server context needs certificate and key"
    end
    opts.server = true
    -- quench's "peer" refuses a client without a valid certificate
    verifies = flags.peer or flags.fail_if_no_peer_cert or false
    opts.verify = verifies and "peer" or false
  else
    -- quench verifies unless told not to: "none" alone says so
    verifies = not (verify_list[1] ~= nil and not flags.peer)
    opts.verify = verifies
  end
  for k, v in pairs(opts) do
    if v ~= nil and k ~= "verify" and k ~= "server" and k ~= "alpn" and k ~= "ignore_unexpected_eof"
       and type(v) ~= "string" then
      return nil, fmt("invalid %s (a string expected, got %s)", k, type(v))
    end
  end
  local ok, qctx, msg = pcall(quench.tls.context, opts)
  if not ok then return nil, config_error(qctx) end
  if qctx == nil then return nil, config_error(msg) end
  return setmetatable({ mode = mode, qctx = qctx, verifies = verifies }, Context)
end

---------------------------------------------------------------------------
-- certificates (LuaSec's x509 objects, from quench's peer_certificate)

local Cert = { __name = "SSL:Certificate" }
Cert.__index = Cert
Cert.__tostring = function(c) return "X509 certificate: " .. c.info.sha256 end

local NAMES = {
  CN = { "2.5.4.3", "commonName" }, O = { "2.5.4.10", "organizationName" },
  OU = { "2.5.4.11", "organizationalUnitName" }, C = { "2.5.4.6", "countryName" },
  ST = { "2.5.4.8", "stateOrProvinceName" }, L = { "2.5.4.7", "localityName" },
  STREET = { "2.5.4.9", "streetAddress" },
  DC = { "0.9.2342.19200300.100.1.25", "domainComponent" },
  UID = { "0.9.2342.19200300.100.1.1", "userId" },
  emailAddress = { "1.2.840.113549.1.9.1", "emailAddress" },
  serialNumber = { "2.5.4.5", "serialNumber" },
}

-- An RFC 2253 name ("CN=a,O=b\, c") as LuaSec's list of
-- {oid, name, value}, in the certificate's order (RFC 2253 reverses it).
local function parse_dn(s)
  local rdns, cur, i = {}, {}, 1
  local buf = {}
  while i <= #s do
    local c = s:sub(i, i)
    if c == "\\" then
      local hex = s:match("^%x%x", i + 1)
      if hex then
        buf[#buf + 1] = string.char(tonumber(hex, 16))
        i = i + 3
      else
        buf[#buf + 1] = s:sub(i + 1, i + 1)
        i = i + 2
      end
    elseif c == "," or c == "+" then
      cur[#cur + 1] = table.concat(buf)
      buf = {}
      if c == "," then rdns[#rdns + 1] = cur; cur = {} end
      i = i + 1
    else
      buf[#buf + 1] = c
      i = i + 1
    end
  end
  cur[#cur + 1] = table.concat(buf)
  rdns[#rdns + 1] = cur
  local out = {}
  for k = #rdns, 1, -1 do
    for _, ava in ipairs(rdns[k]) do
      local key, value = ava:match("^([^=]+)=(.*)$")
      if key then
        local known = NAMES[key]
        out[#out + 1] = { oid = known and known[1] or key, name = known and known[2] or key,
                          value = value }
      end
    end
  end
  return out
end

local function cert_of(info)
  return info and setmetatable({ info = info }, Cert) or nil
end

function Cert:pem() return self.info.pem end
function Cert:subject() return parse_dn(self.info.subject) end
function Cert:issuer() return parse_dn(self.info.issuer) end
function Cert:serial() return self.info.serial:upper() end
local function asn1_time(t) return (os.date("!%b %e %H:%M:%S %Y GMT", t)) end
function Cert:notbefore() return asn1_time(self.info.not_before) end
function Cert:notafter() return asn1_time(self.info.not_after) end
function Cert:validat(t)
  if math.type(t) == nil then
    error("bad argument #1 to 'validat' (number expected, got " .. type(t) .. ")", 2)
  end
  return t >= self.info.not_before and t <= self.info.not_after
end

-- The DER bytes, from the PEM text.
local function der_of(pem)
  local ngx = require("quench.ngx").ngx
  local b64 = pem:match("%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-(.-)%-%-%-%-%-END")
  return ngx.decode_base64((b64 or ""):gsub("%s", ""))
end

local function hex(bin)
  return (bin:gsub(".", function(c) return fmt("%02x", c:byte()) end))
end

--- digest([alg]): the fingerprint in lower-case hex: "sha1" (LuaSec's
-- default), "sha256" or "md5".
function Cert:digest(alg)
  alg = alg or "sha1"
  if alg == "sha256" then return (self.info.sha256:gsub(":", ""):lower()) end
  local C = quench._ngx
  if alg == "sha1" then return hex(C.sha1_bin(der_of(self.info.pem))) end
  if alg == "md5" then return C.md5(der_of(self.info.pem)) end
  error("bad argument #1 to 'digest' (sha1, sha256 or md5 expected, got " .. tostring(alg) .. ")", 2)
end

local ALT = {
  DNS = "dNSName", IP = "iPAddress", URI = "uniformResourceIdentifier", email = "rfc822Name",
}

--- extensions(): the subject alternative names, as LuaSec gives them.
function Cert:extensions()
  local alt = { name = "X509v3 Subject Alternative Name" }
  for _, n in ipairs(self.info.alt_names or {}) do
    local kind, value = n:match("^([^:]+):(.*)$")
    local key = kind and ALT[kind]
    if key then
      alt[key] = alt[key] or {}
      table.insert(alt[key], value)
    end
  end
  return { ["2.5.29.17"] = alt }
end

local function unsupported(what)
  return function() return nil, what .. " is not supported by quench.ssl" end
end
Cert.pubkey = unsupported("pubkey")
Cert.getsignaturename = unsupported("getsignaturename")
Cert.issued = unsupported("issued")
function Cert.setencode() return true end   -- values are UTF-8 already

---------------------------------------------------------------------------
-- SSL objects

local Ssl = { __name = "SSL:Connection" }
local methods = {}
for k, v in pairs(common) do methods[k] = v end
for k, v in pairs(stream_methods) do methods[k] = v end
Ssl.__index = methods
Ssl.__tostring = function(self) return "SSL connection: " .. self.id end
Ssl.__close = function(self) self:close() end

local serial = 0

local function check_ssl(self, fname)
  if getmetatable(self) ~= Ssl then
    error(fmt("bad argument #1 to '%s' (an SSL object from ssl.wrap expected, got %s)",
              fname, type(self)), 3)
  end
end

--- wrap(sock, params): an SSL object over a connected quench.socket
-- client (which is closed, as LuaSec leaves it), or nil, msg.
function M.wrap(sock, cfg)
  local ctx, msg
  if getmetatable(cfg) == Context then
    ctx = cfg
  elseif type(cfg) == "table" then
    ctx, msg = M.newcontext(cfg)
    if not ctx then return nil, msg end
  else
    error("bad argument #2 to 'wrap' (table or context expected, got " .. type(cfg) .. ")", 2)
  end
  if type(sock) ~= "table" or sock.stream == nil or type(sock.buf) ~= "string" then
    error("bad argument #1 to 'wrap' (a connected quench.socket tcp object expected, got "
          .. (type(sock) == "table" and tostring(sock) or type(sock)) .. ")", 2)
  end
  if sock.closed then return nil, "closed" end
  if sock.stream.starttls == nil then return nil, "not a TCP connection" end
  if #sock.buf > 0 then
    return nil, "data was read from the socket before the handshake: it would be lost"
  end
  serial = serial + 1
  local s = setmetatable({
    id = fmt("%08x", serial), stream = sock.stream, buf = "", stats = sock.stats,
    opts = sock.opts, ctx = ctx, state = "new",
  }, Ssl)
  sock.closed = true   -- the stream is the SSL object's now
  sock.stream = nil
  return s
end

--- sni(name): client: the name sent in the handshake and verified.
function methods:sni(name)
  check_ssl(self, "sni")
  if self.ctx.mode == "server" then
    error("sni: quench.ssl does not choose server contexts by name (a server takes one context)", 2)
  end
  if type(name) ~= "string" then
    error("bad argument #1 to 'sni' (string expected, got " .. type(name) .. ")", 2)
  end
  self.servername = name
  return true
end

-- quench's "ETLS_UNKNOWN_CA: certificate verify failed: unable to get
-- local issuer certificate" -> LuaSec's "certificate verify failed"
-- (OpenSSL's reason), and the detail for getpeerverification.
local function handshake_error(msg, code)
  msg = tostring(msg)
  if code == "EOF" or code == "ECONNRESET" or code == "EPIPE" then return "closed" end
  local body = msg:gsub("^[%u%d_]+: ", "")
  local reason, detail = body:match("^(.-): (.*)$")
  return reason or body, detail
end

--- dohandshake(): true, or nil, msg.
function methods:dohandshake()
  check_ssl(self, "dohandshake")
  in_task("dohandshake")
  if self.state == "done" then return true end
  if self.closed or self.state == "failed" then return nil, "closed" end
  local ctx = self.ctx
  local opts = { context = ctx.qctx }
  if ctx.mode == "server" then
    opts.server = true
  elseif self.servername then
    opts.servername = self.servername
  else
    -- no name given: the chain is verified (the context says so), no
    -- name is, as LuaSec does
    opts.verify = false
  end
  local stream = self.stream
  local ok, r, msg, code = bounded(wait_limit(self, quench.now()), stream.starttls, stream, opts)
  if not ok then
    -- the handshake cannot resume: quench closed the stream
    self.state, self.closed = "failed", true
    return nil, "wantread"
  end
  if not r then
    self.state, self.closed = "failed", true
    local reason, detail = handshake_error(msg, code)
    if reason == "certificate verify failed" then self.verify_error = detail or reason end
    return nil, reason
  end
  self.state = "done"
  return true
end

-- LuaSec's words for a timeout in receive and send.
local function luasec_err(err, word)
  if err == "timeout" then return word end
  if type(err) == "string" then return (err:gsub("^ETLS_[%u_]+: ", "")) end
  return err
end

function methods:receive(pattern, prefix)
  check_ssl(self, "receive")
  if self.state ~= "done" then return nil, "closed" end
  local data, err, partial = stream_methods.receive(self, pattern, prefix)
  if data ~= nil then return data end
  return nil, luasec_err(err, "wantread"), partial
end

function methods:send(data, i, j)
  check_ssl(self, "send")
  if self.state ~= "done" then return nil, "closed", 0 end
  local last, err, sent = stream_methods.send(self, data, i, j)
  if last ~= nil then return last end
  return nil, luasec_err(err, "wantwrite"), sent
end

function methods:close()
  check_ssl(self, "close")
  if not self.closed then
    self.closed = true
    self.stream:close()
  end
end

function methods:getpeercertificate(n)
  check_ssl(self, "getpeercertificate")
  n = n or 0
  if self.state ~= "done" or self.closed or n ~= 0 then return nil end
  return cert_of(self.stream:peer_certificate())
end

function methods:getpeerchain()
  check_ssl(self, "getpeerchain")
  local c = self:getpeercertificate()
  if c == nil then return nil end
  return { c }
end

function methods:getpeerverification()
  check_ssl(self, "getpeerverification")
  if self.verify_error then return false, { [0] = { self.verify_error } } end
  if self.state ~= "done" then return false, { [0] = { "no handshake done" } } end
  if self.ctx.mode == "server" and not self.ctx.verifies then
    return false, { [0] = { "no peer certificate asked for (verify = none)" } }
  end
  if not self.ctx.verifies then
    return false, { [0] = { "not verified (verify = none)" } }
  end
  return true
end

local function cipher_bits(name)
  if name == nil then return nil end
  if name:find("256") or name:find("CHACHA20") then return 256 end
  if name:find("128") then return 128 end
  return nil
end

--- info([field]): {protocol, cipher, bits, algbits}, or the one field.
function methods:info(field)
  check_ssl(self, "info")
  if self.state ~= "done" or self.closed then return nil end
  local cipher = self.stream:cipher()
  local bits = cipher_bits(cipher)
  local t = { protocol = self.stream:tls_version(), cipher = cipher, bits = bits, algbits = bits }
  if field ~= nil then return t[field] end
  return t
end

function methods:getalpn()
  check_ssl(self, "getalpn")
  if self.state ~= "done" or self.closed then return nil end
  return self.stream:alpn()
end

function methods:getsniname()
  check_ssl(self, "getsniname")
  if self.state ~= "done" or self.closed or self.ctx.mode ~= "server" then return nil end
  return self.stream:servername()
end

-- The Finished messages (tls-unique channel binding): quench.tls does not
-- give them.
function methods.getfinished() return nil end
function methods.getpeerfinished() return nil end
function methods.getlocalcertificate() return nil end
function methods.getlocalchain() return nil end
function methods.want() return "nothing" end
methods.setdane = unsupported("setdane")
methods.settlsa = unsupported("settlsa")

function methods:dirty()
  if #self.buf > 0 then return true end
  return not self.closed and self.state == "done" and self.stream:buffered() > 0
end

-- quench.socket's stream methods that are not LuaSec's (a TLS stream
-- never goes to quench.pool from here)
methods.shutdown = nil
methods.setkeepalive = nil
methods.getreusedtimes = nil

---------------------------------------------------------------------------
-- the module

M.config = {
  protocols = { tlsv1_2 = true, tlsv1_3 = true },
  options = OPTIONS,
  algorithms = { ec = true },
  capabilities = { alpn = true, curves_list = false, dane = false },
}

M.loadcertificate = unsupported("loadcertificate")

-- What `require "ssl.<name>"` gives through quench.socket's loader.
function M.module(name)
  if name == "ssl" then return M end
  if name == "ssl.config" then return M.config end
  error("quench.socket.require: '" .. name .. "' (LuaSec's C internals) is not provided by "
        .. "quench.ssl; use require \"ssl\" (quench.ssl) and ssl.https", 3)
end

return M
