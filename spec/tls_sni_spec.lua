-- TLS servers with a certificate per SNI name (opts.sni, issue 16), on the
-- real clock over loopback, with certificates made at test time
-- (spec/helpers/tls_pki.lua): the client's server name picks the
-- certificate (exact names, then "*." wildcards of one label, case
-- insensitive), anything else gets the default one; the other options
-- (ALPN) hold for every name. Checked with quench's client (which
-- verifies the chain and the name) and with `openssl s_client`.
local quench = require "quench"
local tls_pki = require "helpers.tls_pki"
local tls = quench.tls

local pki

setup(function() pki = tls_pki.make() end)
teardown(function() tls_pki.remove(pki) end)

local function T(fn) return quench.test(fn, { clock = "real" }) end

-- A server of opts whose connections answer "hi" once, the first task
-- that reads running the handshake; returns its port and a stop function.
local function serve(opts)
  local srv = assert(tls.listen("127.0.0.1", 0, opts))
  local _, port = srv:getsockname()
  local tasks = {}
  local loop = quench.spawn(function()
    while true do
      local s = srv:accept()
      if not s then return end
      tasks[#tasks + 1] = quench.spawn(function()
        if s:read("l") then s:write("hi\n") end
        s:close()
      end)
    end
  end)
  return port, function()
    srv:close()
    loop:join()
    for _, t in ipairs(tasks) do t:join() end
  end
end

local function sni_opts(extra)
  local o = { certificate = pki.server.cert, key = pki.server.key,
              sni = { ["other.example"] = { certificate = pki.other.cert, key = pki.other.key },
                      ["*.wild.example"] = { certificate = pki.wild.cert, key = pki.wild.key } } }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- The subject of the certificate served for name (verified unless verify
-- is false), after one exchange.
local function subject_for(port, name, opts)
  local o = { servername = name, cafile = pki.ca.cert }
  for k, v in pairs(opts or {}) do o[k] = v end
  local c, err, code = tls.connect("127.0.0.1", port, o)
  if not c then return nil, err, code end
  assert(c:write("x\n"))
  assert.are.equal("hi", c:read("l"))
  local subject, alpn = c:peer_certificate().subject, c:alpn()
  c:close()
  return subject, alpn
end

describe("quench.tls server opts.sni", function()
  it("serves each listed name its certificate, verified by the client", T(function()
    local port, stop = serve(sni_opts())
    assert.are.equal("CN=other.example", subject_for(port, "other.example"))
    assert.are.equal("CN=localhost", subject_for(port, "localhost"))
    assert.are.equal("CN=other.example", subject_for(port, "OTHER.Example"))   -- any case
    stop()
  end))

  it("matches a wildcard name to one label only", T(function()
    local port, stop = serve(sni_opts())
    assert.are.equal("CN=*.wild.example", subject_for(port, "a.wild.example"))
    -- neither the bare domain nor two labels: the default certificate
    assert.are.equal("CN=localhost", subject_for(port, "wild.example", { verify = false }))
    assert.are.equal("CN=localhost", subject_for(port, "b.a.wild.example", { verify = false }))
    stop()
  end))

  it("prefers an exact name to a wildcard that also matches", T(function()
    local o = sni_opts()
    o.sni["x.wild.example"] = { certificate = pki.other.cert, key = pki.other.key }
    local port, stop = serve(o)
    assert.are.equal("CN=other.example",
                     subject_for(port, "x.wild.example", { verify = false }))
    assert.are.equal("CN=*.wild.example", subject_for(port, "y.wild.example"))
    stop()
  end))

  it("gives an unlisted name the default certificate, which fails verification for it",
     T(function()
    local port, stop = serve(sni_opts())
    assert.are.equal("CN=localhost", subject_for(port, "nobody.example", { verify = false }))
    local c, err, code = tls.connect("127.0.0.1", port,
                                     { servername = "nobody.example", cafile = pki.ca.cert })
    assert.is_nil(c)
    assert.are.equal("ETLS_HOSTNAME", code)
    assert.matches("certificate verify failed", err)
    stop()
  end))

  it("keeps the server's other options (ALPN) for every name", T(function()
    local port, stop = serve(sni_opts({ alpn = { "h2", "http/1.1" } }))
    local subject, alpn = subject_for(port, "other.example", { alpn = { "http/1.1" } })
    assert.are.equal("CN=other.example", subject)
    assert.are.equal("http/1.1", alpn)
    stop()
  end))

  it("takes a server quench.tls.context as an entry", T(function()
    local ctx = assert(tls.context({ server = true, certificate = pki.other.cert,
                                     key = pki.other.key }))
    local port, stop = serve({ certificate = pki.server.cert, key = pki.server.key,
                               sni = { ["other.example"] = ctx } })
    assert.are.equal("CN=other.example", subject_for(port, "other.example"))
    stop()
  end))

  it("serves openssl s_client the certificate of the name it asks for", T(function()
    local port, stop = serve(sni_opts())
    local p <close> = tls_pki.spawn(quench, "openssl", {
      "s_client", "-connect", "127.0.0.1:" .. port, "-servername", "other.example",
      "-verify_hostname", "other.example", "-CAfile", pki.ca.cert, "-verify_return_error" },
      { stdin = "pipe", stdout = "pipe" })
    assert(p.stdin:write("x\n"))
    local seen = {}
    for line in p.stdout:lines() do
      seen[#seen + 1] = line
      if line == "hi" then break end
    end
    p.stdin:close()
    p:wait()
    local text = table.concat(seen, "\n")
    assert.matches("subject=CN = other.example", text, 1, true)
    assert.matches("Verify return code: 0 (ok)", text, 1, true)
    assert.are.equal("hi", seen[#seen])
    stop()
  end))

  it("returns a configuration failure of an entry as a value", T(function()
    local o = sni_opts()
    o.sni["bad.example"] = { certificate = pki.dir .. "/missing.pem", key = pki.other.key }
    local srv, err, code = tls.listen("127.0.0.1", 0, o)
    assert.is_nil(srv)
    assert.are.equal("ETLS_CONFIG", code)
    assert.matches("missing.pem", err, 1, true)
  end))

  it("raises on misuse, naming the function and the option", T(function()
    assert.has_error(function()
      tls.connect("127.0.0.1", 1, { sni = { ["a.example"] = {} } })
    end, "quench.tls.connect: opts.sni is for a server")
    local o = sni_opts()
    o.sni["a.example"] = { certificate = pki.other.cert, key = pki.other.key, alpn = "h2" }
    assert.has_error(function() tls.listen("127.0.0.1", 0, o) end,
      "quench.tls.listen: opts.sni[\"a.example\"]: unknown option 'alpn' (certificate, key, password)")
    assert.has_error(function()
      tls.listen("127.0.0.1", 0, { certificate = pki.server.cert, key = pki.server.key,
                                   sni = { ["a.example"] = "cert.pem" } })
    end, "quench.tls.listen: opts.sni[\"a.example\"] must be a table (certificate, key) or a context")
    local client = assert(tls.context({ cafile = pki.ca.cert }))
    assert.has_error(function()
      tls.listen("127.0.0.1", 0, { certificate = pki.server.cert, key = pki.server.key,
                                   sni = { ["a.example"] = client } })
    end, "quench.tls.listen: opts.sni[\"a.example\"] must be a server quench.tls.context")
    assert.has_error(function()
      tls.listen("127.0.0.1", 0, { certificate = pki.server.cert, key = pki.server.key,
                                   sni = { "a.example" } })
    end, "quench.tls.listen: opts.sni: the keys must be host names")
  end))
end)
