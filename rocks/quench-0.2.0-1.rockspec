-- The release rockspec of quench 0.2.0 (rocks/quench-scm-1.rockspec is the
-- development one; both build the same way: spec/version_spec.lua checks it).
-- Build and install from a checkout, offline, at the repository root:
--   luarocks --lua-version=5.4 make rocks/quench-0.2.0-1.rockspec
--   luarocks --lua-version=5.4 --tree=./tree make rocks/quench-0.2.0-1.rockspec
rockspec_format = "3.0"
package = "quench"
version = "0.2.0-1"
source = {
   -- `luarocks make` builds the current directory and never fetches this;
   -- `luarocks build` of a release fetches the tag.
   url = "git+https://example.invalid/quench.git",
   tag = "v0.2.0",
}
description = {
   summary = "Async runtime for Lua 5.4: tasks, futures and cancellation on libuv",
   detailed = [[
quench runs Lua coroutines as tasks driven by a C scheduler on libuv.
Every wait is a C future; cancellation and its cleanup are specified.
]],
   labels = { "async", "coroutines", "libuv", "cancellation" },
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
external_dependencies = {
   LIBUV = { header = "uv.h", library = "uv" },
   OPENSSL = { header = "openssl/ssl.h", library = "ssl" },   -- quench.tls (Debian: libssl-dev)
}
build = {
   type = "cmake",
   variables = {
      CMAKE_BUILD_TYPE = "Release",
      CMAKE_C_FLAGS = "$(CFLAGS)",
      CMAKE_INSTALL_PREFIX = "$(PREFIX)",
      LUA_INCDIR = "$(LUA_INCDIR)",
      -- the interpreter luarocks runs makes the embedded bytecode
      QUENCH_LUA_EXE = "$(LUA)",
      LIBDIR = "$(LIBDIR)",
      LUADIR = "$(LUADIR)",
      LIBUV_INCDIR = "$(LIBUV_INCDIR)",
      LIBUV_LIBDIR = "$(LIBUV_LIBDIR)",
      QUENCH_TESTS = "OFF",
   },
}
test = {
   -- busted's own type would try to download busted; use Debian's.
   type = "command",
   command = "lua5.4 /usr/bin/busted",
}
