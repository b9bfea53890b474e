/*
** The HTTP client's transfers for quench.http.request
** (lua/quench/http_client.lua), over core/http_client.c (libcurl).
**
** `quench.http._xfer(o)` makes a transfer from a table the Lua side has
** already checked and normalised, and sets libcurl's options from it.
** The transfer userdata ("quench_internal.http_xfer", never handed to a
** user) owns the core transfer: __close stops it (its connection closed,
** nothing delivered afterwards), __gc frees it. Its methods: start, wait
** (a direct await of some events), events, head, take, feed, high, result,
** stop.
**
** Cancel safety: wait consumes nothing, so a dropped wait loses nothing;
** what stops a transfer at once is closing it, which the Lua side does in
** a <close> variable of quench.http.request (and response:close()).
*/
#define _GNU_SOURCE                     /* dladdr */
#include <dlfcn.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include "binding.h"

#define LQ_XFER "quench_internal.http_xfer"

typedef struct lq_xfer {
  qn_http_xfer *x;
  uint64_t serial;
} lq_xfer;

static lq_xfer *check_xfer(lua_State *L, int idx) {
  lq_xfer *u = luaL_checkudata(L, idx, LQ_XFER);
  if (u->x == NULL) luaL_error(L, "quench.http: the transfer was freed");
  return u;
}

/* string field of o, or NULL */
static const char *sfield(lua_State *L, int o, const char *k) {
  lua_getfield(L, o, k);
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1);                  /* still anchored by the table */
  return s;
}

static lua_Integer ifield(lua_State *L, int o, const char *k, lua_Integer dflt) {
  lua_getfield(L, o, k);
  lua_Integer v = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : dflt;
  lua_pop(L, 1);
  return v;
}

static int bfield(lua_State *L, int o, const char *k) {
  lua_getfield(L, o, k);
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static int setopt_fail(lua_State *L, CURLcode r, const char *what) {
  return luaL_error(L, "quench.http.request: %s: %s", what, curl_easy_strerror(r));
}

#define SETS(opt, val, what) do { CURLcode r_ = curl_easy_setopt(e, opt, val); \
  if (r_ != CURLE_OK) { qn_http_xfer_free(x); u->x = NULL; return setopt_fail(L, r_, what); } } while (0)

/* _xfer(o): o.url, o.method, o.body (string) or o.feed, o.headers (a list
   of "Name: value"), o.connect_ms, o.timeout_ms, o.redirects, o.verify,
   o.cafile, o.capath, o.certificate, o.key, o.password, o.proxy,
   o.http_version ("1.1" or "2"), o.decompress. */
static int l_xfer(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lq_runtime *rt = lq_runtime_of(L, "quench.http.request");
  lq_xfer *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->x = NULL;
  u->serial = rt->serial;
  luaL_setmetatable(L, LQ_XFER);
  qn_http_xfer *x = qn_http_xfer_new(rt->core);
  if (x == NULL) return luaL_error(L, "quench.http.request: out of memory");
  u->x = x;
  CURL *e = qn_http_xfer_easy(x);
  const char *url = sfield(L, 1, "url");
  SETS(CURLOPT_URL, url, "url");
  SETS(CURLOPT_PROTOCOLS_STR, "http,https", "protocols");
  SETS(CURLOPT_REDIR_PROTOCOLS_STR, "http,https", "protocols");
  const char *method = sfield(L, 1, "method");
  lua_getfield(L, 1, "body");
  size_t blen = 0;
  const char *body = lua_tolstring(L, -1, &blen);
  int feed = bfield(L, 1, "feed");
  if (body != NULL) {
    SETS(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen, "body");
    SETS(CURLOPT_COPYPOSTFIELDS, body, "body");
    if (strcmp(method, "POST") != 0) SETS(CURLOPT_CUSTOMREQUEST, method, "method");
  } else if (feed) {
    qn_http_xfer_use_feed(x);
    SETS(CURLOPT_POST, 1L, "body");           /* size unknown: chunked in HTTP/1.1 */
    if (strcmp(method, "POST") != 0) SETS(CURLOPT_CUSTOMREQUEST, method, "method");
  } else if (strcmp(method, "GET") == 0) {
    SETS(CURLOPT_HTTPGET, 1L, "method");
  } else if (strcmp(method, "HEAD") == 0) {
    SETS(CURLOPT_NOBODY, 1L, "method");
  } else {
    SETS(CURLOPT_CUSTOMREQUEST, method, "method");
  }
  lua_pop(L, 1);
  /* headers: libcurl's own "Expect: 100-continue" is turned off unless asked for */
  struct curl_slist *sl = NULL;
  int expect = 0;
  lua_getfield(L, 1, "headers");
  for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
    const char *h = lua_tostring(L, -1);
    if (strncasecmp(h, "expect:", 7) == 0) expect = 1;
    struct curl_slist *n = curl_slist_append(sl, h);
    lua_pop(L, 1);
    if (n == NULL) {
      curl_slist_free_all(sl);
      return luaL_error(L, "quench.http.request: out of memory");
    }
    sl = n;
  }
  lua_pop(L, 2);
  if (!expect) {
    struct curl_slist *n = curl_slist_append(sl, "Expect:");
    if (n == NULL) {
      curl_slist_free_all(sl);
      return luaL_error(L, "quench.http.request: out of memory");
    }
    sl = n;
  }
  qn_http_xfer_own_slist(x, sl);
  SETS(CURLOPT_HTTPHEADER, sl, "headers");
  lua_Integer ms = ifield(L, 1, "connect_ms", 0);
  if (ms > 0) SETS(CURLOPT_CONNECTTIMEOUT_MS, (long)ms, "timeout.connect");
  ms = ifield(L, 1, "timeout_ms", 0);
  if (ms > 0) SETS(CURLOPT_TIMEOUT_MS, (long)ms, "timeout.total");
  lua_Integer redirects = ifield(L, 1, "redirects", 0);
  if (redirects > 0) {
    SETS(CURLOPT_FOLLOWLOCATION, 1L, "redirects");
    SETS(CURLOPT_MAXREDIRS, (long)redirects, "redirects");
    qn_http_xfer_set_follow(x, 1);
  }
  int verify = bfield(L, 1, "verify");
  SETS(CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L, "verify");
  SETS(CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L, "verify");
  const char *s;
  if ((s = sfield(L, 1, "cafile")) != NULL) SETS(CURLOPT_CAINFO, s, "cafile");
  if ((s = sfield(L, 1, "capath")) != NULL) SETS(CURLOPT_CAPATH, s, "capath");
  if ((s = sfield(L, 1, "certificate")) != NULL) SETS(CURLOPT_SSLCERT, s, "certificate");
  if ((s = sfield(L, 1, "key")) != NULL) SETS(CURLOPT_SSLKEY, s, "key");
  if ((s = sfield(L, 1, "password")) != NULL) SETS(CURLOPT_KEYPASSWD, s, "password");
  if ((s = sfield(L, 1, "proxy")) != NULL) SETS(CURLOPT_PROXY, s, "proxy");
  if ((s = sfield(L, 1, "http_version")) != NULL) {
    long v = strcmp(s, "2") == 0 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1;
    SETS(CURLOPT_HTTP_VERSION, v, "http_version");
  }
  if (bfield(L, 1, "decompress")) SETS(CURLOPT_ACCEPT_ENCODING, "", "decompress");
  return 1;
}

static qn_http_xfer *live(lua_State *L, lq_xfer *u) {
  lq_check_alive(L, u->serial, "quench.http.request", "response");
  return u->x;
}

static int l_start(lua_State *L) {
  lq_xfer *u = check_xfer(L, 1);
  int r = qn_http_xfer_start(live(L, u));
  if (r == QN_ENOMEM) return luaL_error(L, "quench.http.request: out of memory");
  if (r != 0) return luaL_error(L, "quench.http.request: the transfer cannot start");
  lua_pushboolean(L, 1);
  return 1;
}

/* x:wait is one lq_obj_kind (lua/binding.h) given the transfer: its
   operands are the transfer at 1 and the mask at 2. It has a direct form
   only (the response reader in lua/quench/http_client.lua). */
static unsigned wait_mask(lua_State *L, int op) {
  lq_op_arg(L, op, 2);
  unsigned mask = (unsigned)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return mask;
}

static int wait_now(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  unsigned mask = wait_mask(L, op);
  unsigned ev = qn_http_xfer_events(((lq_xfer *)obj)->x);
  if (!(ev & (mask | QN_HTTPX_DONE))) return -1;
  lua_pushinteger(L, (lua_Integer)ev);
  return 1;
}

static qn_future *wait_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  return qn_http_xfer_wait_new(((lq_xfer *)obj)->x, wait_mask(L, op));
}

/* the events, or DONE if the transfer was released meanwhile */
static int wait_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)op, (void)f;
  lq_xfer *u = obj;
  lua_pushinteger(L, u->x ? (lua_Integer)qn_http_xfer_events(u->x) : QN_HTTPX_DONE);
  return 1;
}

static const lq_obj_kind wait_kind = LQ_OBJ_KIND("http request", NULL, wait_start, wait_finish,
                                                 wait_now);
LQ_OBJ_PERFORM_K(wait_k, wait_kind)

/* x:wait(mask): the events, once one of mask (or DONE) holds. */
static int l_wait(lua_State *L) {
  lq_xfer *u = check_xfer(L, 1);
  qn_http_xfer *x = live(L, u);
  lua_Integer mask = luaL_checkinteger(L, 2);
  lq_coro *c = lq_await_ctx(L, "quench.http.request");
  if (qn_http_xfer_waited(x))
    return luaL_error(L, "quench.http: the response is being read by another task");
  lua_settop(L, 1);
  lua_pushinteger(L, mask);             /* 2: a number, whatever the argument's type */
  return lq_obj_perform(L, c, &wait_kind, u, "quench.http.request", NULL, wait_k);
}

static int l_events(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)qn_http_xfer_events(live(L, check_xfer(L, 1))));
  return 1;
}

/* x:head() -> status, raw header lines, version ("1.0", "1.1", "2"), url */
static int l_head(lua_State *L) {
  qn_http_xfer *x = live(L, check_xfer(L, 1));
  CURL *e = qn_http_xfer_easy(x);
  long code = 0, ver = 0;
  char *url = NULL;
  if (e) {
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &ver);
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &url);
  }
  size_t n;
  const char *h = qn_http_xfer_head(x, &n);
  lua_pushinteger(L, code);
  lua_pushlstring(L, h, n);
  lua_pushstring(L, ver == CURL_HTTP_VERSION_1_0 ? "1.0" : ver == CURL_HTTP_VERSION_2_0 ? "2"
                    : ver == CURL_HTTP_VERSION_3 ? "3" : "1.1");
  if (url) lua_pushstring(L, url);
  else lua_pushnil(L);
  return 4;
}

/* x:take(max) -> up to max buffered body bytes, or nil if none */
static int l_take(lua_State *L) {
  qn_http_xfer *x = live(L, check_xfer(L, 1));
  lua_Integer max = luaL_optinteger(L, 2, LUA_MAXINTEGER);
  size_t n;
  const char *p = qn_http_xfer_peek(x, &n);
  if (n == 0) {
    lua_pushnil(L);
    return 1;
  }
  if ((lua_Integer)n > max) n = (size_t)max;
  lua_pushlstring(L, p, n);
  qn_http_xfer_consume(x, n);             /* after the copy: it may resume the transfer */
  return 1;
}

/* x:feed(s) (nil or "": the end of the upload) */
static int l_feed(lua_State *L) {
  qn_http_xfer *x = live(L, check_xfer(L, 1));
  size_t n = 0;
  const char *s = luaL_optlstring(L, 2, "", &n);
  if (qn_http_xfer_feed(x, s, n) != 0) return luaL_error(L, "quench.http.request: out of memory");
  return 0;
}

static int l_high(lua_State *L) {
  qn_http_xfer *x = live(L, check_xfer(L, 1));
  lua_Integer n = luaL_checkinteger(L, 2);
  qn_http_xfer_set_high_water(x, n > 0 ? (size_t)n : 1);
  return 0;
}

/* An I/O code for a libcurl failure (docs/http.md lists them). */
static const char *code_name(CURL *e, int r) {
  long os = 0;
  if (e) curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os);
  switch ((CURLcode)r) {
    case CURLE_COULDNT_CONNECT:
      return os ? uv_err_name(-(int)os) : "ECONNREFUSED";
    case CURLE_OPERATION_TIMEDOUT: return "ETIMEDOUT";
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY: return "EAI_NONAME";
    case CURLE_PEER_FAILED_VERIFICATION: return "ETLS_VERIFY";
    case CURLE_SSL_CONNECT_ERROR: case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE: return "ETLS_HANDSHAKE";
    case CURLE_TOO_MANY_REDIRECTS: return "EREDIRECTS";
    case CURLE_FILESIZE_EXCEEDED: return "EMSGSIZE";
    case CURLE_GOT_NOTHING: return "EOF";
    case CURLE_PARTIAL_FILE: return "EOF";
    case CURLE_SEND_ERROR: case CURLE_RECV_ERROR:
      return os ? uv_err_name(-(int)os) : "ECONNRESET";
    case CURLE_OUT_OF_MEMORY: return "ENOMEM";
    case CURLE_URL_MALFORMAT: case CURLE_UNSUPPORTED_PROTOCOL: return "EINVAL";
    case CURLE_WEIRD_SERVER_REPLY: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING: case CURLE_WRITE_ERROR: return "EPROTO";
    default: return "EHTTP";
  }
}

/* x:result() -> true (done, complete), false (not done), or nil, msg, code */
static int l_result(lua_State *L) {
  qn_http_xfer *x = live(L, check_xfer(L, 1));
  if (!(qn_http_xfer_events(x) & QN_HTTPX_DONE)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  const char *msg;
  int r = qn_http_xfer_result(x, &msg);
  if (r == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  const char *code = r < 0 ? "ECANCELED" : code_name(qn_http_xfer_easy(x), r);
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", code, msg);
  lua_pushstring(L, code);
  return 3;
}

static int l_stop(lua_State *L) {
  lq_xfer *u = luaL_checkudata(L, 1, LQ_XFER);
  if (u->x && lq_alive(L, u->serial)) qn_http_xfer_stop(u->x);
  return 0;
}

static int xfer_gc(lua_State *L) {
  lq_xfer *u = luaL_checkudata(L, 1, LQ_XFER);
  qn_http_xfer_free(u->x);
  u->x = NULL;
  return 0;
}

/* _url_error(url) -> nil, or what libcurl's URL parser has against it */
static int l_url_error(lua_State *L) {
  const char *url = luaL_checkstring(L, 1);
  CURLU *h = curl_url();
  if (h == NULL) return luaL_error(L, "quench.http.request: out of memory");
  CURLUcode r = curl_url_set(h, CURLUPART_URL, url, 0);
  char *host = NULL;
  if (r == CURLUE_OK) r = curl_url_get(h, CURLUPART_HOST, &host, 0);
  curl_free(host);
  curl_url_cleanup(h);
  if (r == CURLUE_OK) return 0;
  lua_pushstring(L, curl_url_strerror(r));
  return 1;
}

static const luaL_Reg methods[] = {
  {"start", l_start}, {"wait", l_wait}, {"events", l_events}, {"head", l_head},
  {"take", l_take}, {"feed", l_feed}, {"high", l_high}, {"result", l_result},
  {"stop", l_stop}, {NULL, NULL}
};

static const luaL_Reg metamethods[] = {
  {"__close", l_stop}, {"__gc", xfer_gc}, {NULL, NULL}
};

/* Keep libcurl (and so the libraries it loaded: OpenSSL, nghttp2, LDAP's
   GnuTLS...) mapped after lua_close dlcloses quench.so: some of them keep
   process-wide state and thread-local storage (dynamic TLS) that outlive
   any use of ours, and unmapping them under the sanitizers' leak check at
   exit makes LeakSanitizer read stale TLS blocks and crash. Best effort. */
static void pin_libcurl(void) {
  Dl_info info;
  if (dladdr((void *)(uintptr_t)curl_version, &info) == 0 || info.dli_fname == NULL) return;
  void *h = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
  if (h) dlclose(h);                    /* the reference goes; NODELETE stays */
}

void lq_http_client_register(lua_State *L, int mod) {
  pin_libcurl();
  lq_class(L, mod, LQ_XFER, methods, metamethods);
  lua_getfield(L, -1, "http");               /* made by lq_http_register */
  lua_pushvalue(L, mod);
  lua_pushcclosure(L, l_xfer, 1);
  lua_setfield(L, -2, "_xfer");
  lua_pushcfunction(L, l_url_error);
  lua_setfield(L, -2, "_url_error");
  lua_pushinteger(L, QN_HTTPX_HEAD);
  lua_setfield(L, -2, "_HEAD");
  lua_pushinteger(L, QN_HTTPX_NEED);
  lua_setfield(L, -2, "_NEED");
  lua_pushinteger(L, QN_HTTPX_DATA);
  lua_setfield(L, -2, "_DATA");
  lua_pushinteger(L, QN_HTTPX_DONE);
  lua_setfield(L, -2, "_DONE");
  lua_pop(L, 1);
}
