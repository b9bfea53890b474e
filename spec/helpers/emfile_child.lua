-- Run by spec/limits_spec.lua in a child shell with `ulimit -n 64`: open
-- files and TCP connections until the process runs out of descriptors,
-- check the failure comes back as nil, "EMFILE: ...", "EMFILE", and that the
-- runtime keeps serving once descriptors are free again. Prints one line per
-- check ("ok <what>" or "FAIL <what>: <detail>"), then "done".
package.cpath = (os.getenv("QUENCH_TEST_CPATH") or "./build/?.so") .. ";" .. package.cpath
local quench = require "quench"

local function check(what, cond, detail)
  print((cond and "ok " or "FAIL ") .. what .. (cond and "" or (": " .. tostring(detail))))
end

local function is_emfile(msg, code)
  return code == "EMFILE" and type(msg) == "string" and msg:match("^EMFILE") ~= nil
end

quench.run(function()   -- the real clock: this is I/O
  if quench.fs then
    local files, msg, code = {}, nil, nil
    for _ = 1, 10000 do
      local r = table.pack(quench.timeout(5, quench.fs.open, "/dev/null", "r"))
      if not r[1] then msg = "timed out"; break end
      if not r[2] then msg, code = r[3], r[4]; break end
      files[#files + 1] = r[2]
    end
    check("fs.open fails with nil, \"EMFILE...\", \"EMFILE\"", is_emfile(msg, code),
      tostring(msg) .. " / " .. tostring(code) .. " after " .. #files .. " files")
    table.remove(files):close()
    local f = quench.timeout(5, quench.fs.open, "/dev/null", "r")
    check("fs.open works again after a close", f)
    for _, x in ipairs(files) do x:close() end
  end
  if quench.tcp then
    local srv = assert(quench.tcp.listen("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local accepted, accept_errors = {}, {}
    local acceptor = quench.spawn(function()
      while true do
        local s, msg, code = srv:accept()
        if s then accepted[#accepted + 1] = s
        else
          accept_errors[#accept_errors + 1] = code or msg
          quench.sleep(0.01)
        end
      end
    end)
    local clients, msg, code = {}, nil, nil
    for _ = 1, 10000 do
      local r = table.pack(quench.timeout(5, quench.tcp.connect, "127.0.0.1", port))
      if not r[1] then msg = "timed out"; break end
      if not r[2] then msg, code = r[3], r[4]; break end
      clients[#clients + 1] = r[2]
    end
    check("tcp.connect fails with nil, \"EMFILE...\", \"EMFILE\"", is_emfile(msg, code),
      tostring(msg) .. " / " .. tostring(code) .. " after " .. #clients .. " connections")
    for _, e in ipairs(accept_errors) do
      check("accept failed only with EMFILE/ENFILE", e == "EMFILE" or e == "ENFILE", e)
    end
    for _, c in ipairs(clients) do c:close() end
    quench.sleep(0.05)
    for _, s in ipairs(accepted) do s:close() end
    accepted = {}
    -- the runtime keeps serving: a fresh connection echoes
    local ok, c = quench.timeout(5, quench.tcp.connect, "127.0.0.1", port)
    check("tcp.connect works again", ok and c, c)
    if ok and c then
      local _, line = quench.timeout(5, function()
        while #accepted == 0 do quench.sleep(0.01) end
        local s = accepted[#accepted]
        c:write("ping\n")
        local line = s:read("l")
        s:write(line .. "\n")
        return c:read("l")
      end)
      check("an echo round trip works", line == "ping", line)
      c:close()
    end
    acceptor:abort()
    srv:close()
  end
  quench.sleep(0.01)
  check("sleep after exhaustion", true)
end)
print("done")
