-- The API reference (docs/api/src/*.lua, LDoc stubs) covers the whole API:
-- every function of the module table (and of its sub-tables, quench.tcp...)
-- and every method of every object type has an entry `function quench.x`
-- or `function Class:method`, each with a "Cancel safety" note and a
-- @raise; and ldoc turns the stubs into the HTML reference without a
-- complaint (the build makes it: cmake --build build --target api_docs).
local quench = require "quench"
local api_surface = require "helpers.api_surface"

local SRC = "docs/api/src"

-- Helper commands run without the sanitizer runtimes scripts/test.sh
-- preloads into lua5.4 (LeakSanitizer would judge ls, ldoc and diff too).
local SH = "env -u LD_PRELOAD "

-- Metatable name (__name) -> the class name the stubs use.
local CLASSES = {
  ["quench.task"] = "Task", ["quench.op"] = "Op", ["quench.token"] = "Token",
  ["quench.guard"] = "Guard", ["quench.cancel_registration"] = "CancelRegistration",
  ["quench.channel"] = "Channel",
  ["quench.oneshot.sender"] = "OneshotSender", ["quench.oneshot.receiver"] = "OneshotReceiver",
  ["quench.broadcast"] = "Broadcast", ["quench.broadcast.receiver"] = "BroadcastReceiver",
  ["quench.watch"] = "Watch", ["quench.watch.receiver"] = "WatchReceiver",
  ["quench.mutex"] = "Mutex", ["quench.rwlock"] = "RwLock", ["quench.semaphore"] = "Semaphore",
  ["quench.permit"] = "Permit", ["quench.notify"] = "Notify", ["quench.barrier"] = "Barrier",
  ["quench.tcp.server"] = "TcpServer", ["quench.tcp.stream"] = "TcpStream",
  ["quench.udp"] = "UdpSocket", ["quench.file"] = "File",
  ["quench.process"] = "Process", ["quench.pipe"] = "Pipe",
  ["quench.tls.server"] = "TlsServer", ["quench.tls.stream"] = "TlsStream",
  ["quench.tls.context"] = "TlsContext", ["quench.tls.session"] = "TlsSession",
  ["quench.http.server"] = "HttpServer",
  ["quench.unix.server"] = "UnixServer", ["quench.unix.stream"] = "UnixStream",
  ["quench.unix.dgram"] = "UnixDgram",
}

local function list_stubs()
  local files = {}
  local p = assert(io.popen(SH .. "sh -c 'ls " .. SRC .. "/*.lua' 2>/dev/null"))
  for line in p:lines() do files[#files + 1] = line end
  p:close()
  return files
end

-- name -> { file = ..., doc = the comment block above it }
local function parse_stubs()
  local entries = {}
  for _, path in ipairs(list_stubs()) do
    local f = assert(io.open(path))
    local block = {}
    for line in f:lines() do
      local name = line:match("^function%s+([%w_%.:]+)%s*%(")
      if name then
        entries[name] = { file = path, doc = table.concat(block, "\n") }
        block = {}
      elseif line:match("^%-%-") then
        block[#block + 1] = line
      else
        block = {}
      end
    end
    f:close()
  end
  return entries
end

local function module_functions() return api_surface.module_functions(quench) end

-- The methods of an __index table, as "Class:method".
local function methods_of(class, index, out)
  for k, v in pairs(index) do
    if type(k) == "string" and type(v) == "function" and not k:match("^__") then
      out[class .. ":" .. k] = true
    end
  end
end

-- The method table of a metatable: its __index, or, when __index is a
-- function (an object with fields as well, such as a process), the table
-- of functions among that function's upvalues.
local function method_table(mt)
  local index = rawget(mt, "__index")
  if type(index) == "table" then return index end
  if type(index) ~= "function" then return nil end
  for i = 1, 255 do
    local name, v = debug.getupvalue(index, i)
    if name == nil then break end
    if type(v) == "table" then
      for _, f in pairs(v) do
        if type(f) == "function" then return v end
      end
    end
  end
  return nil
end

-- One object of every type the API hands out, made for real.
local function sample_objects()
  local objs = {}
  local function add(class, obj)
    objs[#objs + 1] = { class = class, obj = obj }
  end
  quench.run({ clock = "real" }, function()
    local h = quench.spawn(function() end)
    add("Task", h)
    add("Op", quench.sleep_op(0))
    add("Token", quench.token())
    add("Guard", quench.guard(function() end))
    add("Channel", quench.channel())
    local tx, rx = quench.oneshot()
    add("OneshotSender", tx)
    add("OneshotReceiver", rx)
    local b = quench.broadcast(1)
    add("Broadcast", b)
    add("BroadcastReceiver", b:subscribe())
    local w = quench.watch(1)
    add("Watch", w)
    add("WatchReceiver", w:subscribe())
    local m = quench.mutex()
    add("Mutex", m)
    local p = m:lock()
    add("Permit", p)
    p:release()
    add("RwLock", quench.rwlock())
    add("Semaphore", quench.semaphore(1))
    add("Notify", quench.notify())
    add("Barrier", quench.barrier(1))
    local set <close> = quench.task_set()
    add("TaskSet", set)
    quench.scope(function(s) add("Scope", s) end)
    if quench.tcp then
      local server = assert(quench.tcp.listen("127.0.0.1", 0))
      local _, port = server:getsockname()
      add("TcpServer", server)
      local client = quench.tcp.connect("127.0.0.1", port)
      if client then
        add("TcpStream", client)
        client:close()
      end
      server:close()
    end
    if quench.http and quench.http.listen then
      local server = assert(quench.http.listen("127.0.0.1", 0))
      add("HttpServer", server)
      server:close()
    end
    if quench.udp and quench.udp.bind then
      local u = quench.udp.bind("127.0.0.1", 0)
      if u then
        add("UdpSocket", u)
        u:close()
      end
    end
    if quench.fs and quench.fs.open then
      local name = os.tmpname()
      local file = quench.fs.open(name, "r")
      if file then
        add("File", file)
        file:close()
      end
      os.remove(name)
    end
    h:join()
  end)
  return objs
end

describe("API reference (docs/api)", function()
  local entries = parse_stubs()

  it("has stubs to read", function()
    assert.is_true(#list_stubs() >= 9, "no LDoc stubs found in " .. SRC)
  end)

  it("documents every function of the module table", function()
    local missing = {}
    for _, name in ipairs(module_functions()) do
      if not entries[name] then missing[#missing + 1] = name end
    end
    table.sort(missing)
    assert(#missing == 0, "undocumented in " .. SRC .. "/*.lua (add `function <name>(...)` "
      .. "with its doc comment): " .. table.concat(missing, ", "))
  end)

  it("documents every method of every object type", function()
    local want, unknown = {}, {}
    for _, o in ipairs(sample_objects()) do
      local methods = method_table(getmetatable(o.obj) or {})
      assert(methods, o.class .. " has no method table")
      methods_of(o.class, methods, want)
    end
    -- every C type registered under a quench.* name, even one nobody made above
    for name, mt in pairs(debug.getregistry()) do
      local methods = type(name) == "string" and name:match("^quench%.") and type(mt) == "table"
        and method_table(mt)
      if methods then
        local class = CLASSES[name]
        if class then
          methods_of(class, methods, want)
        else
          unknown[#unknown + 1] = name
        end
      end
    end
    table.sort(unknown)
    assert(#unknown == 0, "object types with methods but no class name in "
      .. "spec/doc_coverage_spec.lua's CLASSES (add one, then document its methods): "
      .. table.concat(unknown, ", "))
    local missing = {}
    for name in pairs(want) do
      if not entries[name] then missing[#missing + 1] = name end
    end
    table.sort(missing)
    assert(#missing == 0, "undocumented methods (add `function Class:method(...)` to "
      .. SRC .. "/*.lua): " .. table.concat(missing, ", "))
  end)

  it("gives every entry a Cancel safety note and its errors (@raise)", function()
    local bad = {}
    for name, e in pairs(entries) do
      if not e.doc:find("Cancel safety", 1, true) then
        bad[#bad + 1] = name .. " (no \"Cancel safety\")"
      end
      if not e.doc:find("@raise", 1, true) then bad[#bad + 1] = name .. " (no @raise)" end
    end
    table.sort(bad)
    assert(#bad == 0, "incomplete entries: " .. table.concat(bad, ", "))
  end)

  it("builds into an HTML reference with no complaint from ldoc", function()
    -- The HTML is generated by the build (target api_docs), never committed.
    local have_ldoc = os.execute(SH .. "sh -c 'command -v ldoc' >/dev/null 2>&1")
    assert(have_ldoc, "ldoc is not installed (Debian: lua-ldoc lua-markdown; scripts/deps.sh)")
    local out = os.tmpname()
    os.remove(out)
    local cmd = string.format(SH .. "sh -c 'cd docs/api && ldoc --testing -d %s . 2>&1; echo status=$?'", out)
    local p = assert(io.popen(cmd))
    local log = p:read("a")
    p:close()
    local index = io.open(out .. "/index.html")
    if index then index:close() end
    os.execute(string.format(SH .. "rm -rf %q", out))
    local complaints = {}
    for line in log:gmatch("[^\n]+") do
      if not line:match("^reading configuration") and not line:match("^output written")
         and not line:match("^status=0$") then
        complaints[#complaints + 1] = line
      end
    end
    assert(index and #complaints == 0, "ldoc on docs/api/src:\n" .. table.concat(complaints, "\n"))
  end)
end)
