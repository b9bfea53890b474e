/* The C helpers of quench.ngx (lua/quench/ngx.lua), as quench._ngx:
   the ngx.null sentinel, which only C can make (a light userdata, NULL, as
   OpenResty's and cjson's), the digests OpenResty code calls (md5, sha1)
   from OpenSSL's libcrypto rather than hand-written ones, and the wall
   clock with sub-second precision (ngx.now), which Lua's os.time lacks.
   Internal: the underscore keeps it out of the public API. */
#include <time.h>
#include <openssl/evp.h>
#include "binding.h"

/* One-shot digest of the string argument; hex when asked for. */
static int digest(lua_State *L, const EVP_MD *md, const char *fname, int hex) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (md == NULL || EVP_Digest(s, len, out, &n, md, NULL) != 1)
    return luaL_error(L, "%s: libcrypto could not compute the digest", fname);
  if (!hex) {
    lua_pushlstring(L, (const char *)out, n);
    return 1;
  }
  static const char digits[] = "0123456789abcdef";
  char buf[2 * EVP_MAX_MD_SIZE];
  for (unsigned int i = 0; i < n; i++) {
    buf[2 * i] = digits[out[i] >> 4];
    buf[2 * i + 1] = digits[out[i] & 15];
  }
  lua_pushlstring(L, buf, 2 * (size_t)n);
  return 1;
}

static int l_md5(lua_State *L) { return digest(L, EVP_md5(), "ngx.md5", 1); }
static int l_md5_bin(lua_State *L) { return digest(L, EVP_md5(), "ngx.md5_bin", 0); }
static int l_sha1_bin(lua_State *L) { return digest(L, EVP_sha1(), "ngx.sha1_bin", 0); }

/* Seconds since the epoch, with the sub-second part (CLOCK_REALTIME). */
static int l_wall(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/* quench._ngx = {md5, md5_bin, sha1_bin, wall, null}; the module table is
   on top (mod, the runtime userdata, is not needed: nothing here waits). */
void lq_ngx_register(lua_State *L, int mod) {
  (void)mod;
  static const luaL_Reg fns[] = {
    {"md5", l_md5}, {"md5_bin", l_md5_bin}, {"sha1_bin", l_sha1_bin}, {"wall", l_wall},
    {NULL, NULL}
  };
  luaL_newlib(L, fns);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_setfield(L, -2, "_ngx");
}
