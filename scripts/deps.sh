# Sourced by scripts/test.sh and scripts/demo.sh: install the Debian 12
# packages quench needs, if any is missing. Only Debian's apt is used.
# Set QUENCH_NO_APT=1 to skip (then missing tools fail later, loudly).

QUENCH_PACKAGES=(
  lua5.4 liblua5.4-dev libuv1-dev
  luarocks lua-busted lua-check
  cmake gcc make libc6-dev
  valgrind                    # scripts/test.sh stage 2 (memcheck)
  lua-sql-sqlite3             # examples/sqlite_rollback.lua
  lua-ldoc lua-markdown       # the HTML reference (target api_docs; spec/doc_coverage_spec.lua runs ldoc)
  libssl-dev openssl curl     # quench.tls (core/tls.c); spec/tls_spec.lua's peers
  libh2o-dev                  # core/http.c: picohttpparser (shipped inside libh2o)
  lua-cjson curl wrk          # examples/http_api.lua, spec/http_spec.lua
  lua-socket lua-redis redis-server python3   # spec/socket_*_spec.lua: LuaSocket code on quench.socket
  redis-tools memcached         # spec/ngx_spec.lua, examples/redis_cache.lua, bench/redis.sh
  lua-nginx-redis lua-nginx-memcached  # resty.redis, resty.memcached (pull nginx-extras: the bench's OpenResty side)
  lua-sec                     # spec/ssl_spec.lua: lua-sec's ssl.https on quench.ssl
  lua-nginx-dns dnsmasq-base lua-rex-pcre2  # spec/ngx_drivers_spec.lua: resty.dns.resolver against dnsmasq; ngx.re (PCRE2)
  lua-nginx-websocket python3-websockets  # spec/ngx_drivers_spec.lua: resty.websocket.client
  lua-nginx-redis-connector   # spec/ngx_drivers_spec.lua: resty.redis.connector (redis-server --sentinel)
  libcurl4-openssl-dev nginx  # quench.http.request (core/http_client.c); spec/http_client_spec.lua's peers
)

quench_install_deps() {
  local missing=() p
  for p in "${QUENCH_PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" != "ii " ]; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "${QUENCH_NO_APT:-}" = 1 ]; then
    echo "deps: missing ${missing[*]} (QUENCH_NO_APT=1: not installing)" >&2
    return 0
  fi
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then
      sudo=(sudo)
    else
      echo "deps: missing ${missing[*]}; run as root to install them" >&2
      return 1
    fi
  fi
  echo "deps: installing ${missing[*]}" >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null &&
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends "${missing[@]}" </dev/null
}
