-- TLS sugar: quench.tls.connect_op, the op form of quench.tls.connect.
--
-- A TLS connect is two waits (the TCP connect, then the handshake), each
-- with its own drop rule in lua/tls.c; as one op it is quench.op over
-- connect, so whichever wait is pending when the op is dropped keeps its
-- rule: connecting, nothing is left; handshaking, the stream is closed and
-- never returned.
local quench = ...
local tls = quench.tls
local connect = tls.connect

local function typename(v)
  return type(v) == "number" and tostring(v) or type(v)
end

function tls.connect_op(host, port, opts)
  local fname = "quench.tls.connect_op"
  if type(host) ~= "string" then
    error(("bad argument #1 to '%s' (string expected, got %s)"):format(fname, typename(host)), 2)
  end
  if math.type(port) ~= "integer" or port < 0 or port > 65535 then
    error(("bad argument #2 to '%s' (port must be an integer in 0..65535, got %s)")
          :format(fname, typename(port)), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #3 to '%s' (table expected, got %s)"):format(fname, typename(opts)), 2)
  end
  return quench.op(connect, host, port, opts)
end
