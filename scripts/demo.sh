#!/usr/bin/env bash
# Set up quench and run the main demo, from a clean clone on Debian 12:
# installs the Debian packages, builds and installs the rock with luarocks
# (offline), then runs examples/demo.lua with a plain lua5.4.
# As root the rock goes to the system tree (/usr/local, on lua5.4's default
# paths); otherwise to ./tree, which is put on the paths for the demo.
set -euo pipefail
exec </dev/null
cd "$(dirname "${BASH_SOURCE[0]}")/.."

. scripts/deps.sh
quench_install_deps

tree=()
if [ "$(id -u)" != 0 ]; then
  tree=(--tree=./tree)
fi
# A stale CMake cache (e.g. from a clone at another path) would break the build.
rm -rf build.luarocks
luarocks --lua-version=5.4 "${tree[@]}" make rocks/quench-scm-1.rockspec
if [ ${#tree[@]} -gt 0 ]; then
  eval "$(luarocks --lua-version=5.4 "${tree[@]}" path)"
fi

echo "--- lua5.4 examples/demo.lua"
exec lua5.4 examples/demo.lua "$@"
