-- luacheck config: lua5.4 code everywhere, busted's globals in spec/.
std = "lua54"
max_line_length = 110
-- `local _name <close> = ...` exists only for its __close: not an unused variable.
ignore = { "211/_.*" }
exclude_files = { "build*/", "tree/", ".luarocks/", "lua_modules/" }
files["spec/"] = { std = "+busted" }
