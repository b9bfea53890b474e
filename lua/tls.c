/*
** TLS ("quench.tls"): quench.tls.connect, quench.tls.listen,
** quench.tls.context, stream:starttls, TLS servers ("quench.tls.server"),
** TLS streams ("quench.tls.stream") and sessions ("quench.tls.session"),
** over core/tls.c. A TLS stream is a TCP stream whose bytes go through
** TLS: every stream method (lua/stream.c) and every TCP one (getsockname,
** nodelay...) works on it as on a TCP stream, plus handshake, alpn,
** tls_version, cipher, peer_certificate, session, session_reused.
** Options mirror LuaSec's names where it has one. An I/O or TLS failure
** returns nil, "ENAME: message", "ENAME" (ETLS_* codes carry OpenSSL's
** reason); misuse raises naming the function.
**
** Ownership: streams as lua/stream.c's (stream:starttls makes the TCP
** stream userdata a TLS one in place: same object, new metatable). A
** context userdata holds a reference to its core context, as each stream
** made with it does; a session userdata owns its SSL_SESSION.
**
** Cancel safety (docs/io.md has the table):
** - connect (and connect_op: one op, over core/tls_start.c's future):
**   dropped while connecting, nothing is left; dropped during the
**   handshake or once ready but not resumed, the stream is closed (it was
**   never returned).
** - handshake (and starttls, and the first read or write of an accepted
**   stream, which run it): dropped before it completes, the stream is
**   closed; a handshake is never resumed.
** - accept: as TCP's (the connection stays queued); the handshake is not
**   part of it (it runs in the task that first uses the stream).
** - read, write, shutdown: as a TCP stream's (lua/stream.c): records are
**   decrypted on the loop side, so a dropped read loses nothing; a write
**   is encrypted and queued whole or not at all.
*/
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include "stream.h"

#define LQ_CONTEXT "quench.tls.context"
#define LQ_SESSION "quench.tls.session"

typedef struct lq_context {
  qn_tls_ctx *ctx;
} lq_context;

typedef struct lq_session {
  SSL_SESSION *sess;
} lq_session;

/* ---- options ---- */

static const char *const tls_keys[] = {
  "server", "verify", "servername", "cafile", "capath", "certificate", "key", "password",
  "alpn", "ciphers", "ciphersuites", "min_version", "max_version", "session", "context",
  "ignore_unexpected_eof", "sni", NULL
};
static const char *const tcp_keys[] = {
  "nodelay", "keepalive", "read_limit", "write_limit", NULL
};
static const char *const listen_keys[] = {
  "backlog", "reuseaddr", "reuseport", "ipv6only", NULL
};

static int in_list(const char *const *keys, const char *k) {
  for (int i = 0; keys[i]; i++)
    if (strcmp(keys[i], k) == 0) return 1;
  return 0;
}

/* Raise on a key that is no option of fname: a typo is not ignored. */
static void check_keys(lua_State *L, int opts, int tcp, int listen, const char *fname) {
  lua_pushnil(L);
  while (lua_next(L, opts)) {
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (k == NULL || !(in_list(tls_keys, k) || (tcp && in_list(tcp_keys, k)) ||
                       (listen && in_list(listen_keys, k)))) {
      lua_pushfstring(L, "%s: unknown option '%s'", fname, luaL_tolstring(L, -1, NULL));
      lua_error(L);
    }
  }
}

static const char *opt_string(lua_State *L, int opts, const char *name, const char *fname) {
  const char *v = NULL;
  if (lua_getfield(L, opts, name) != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "%s: opts.%s must be a string", fname, name);
    v = lua_tostring(L, -1);               /* stays valid: the table holds it */
  }
  lua_pop(L, 1);
  return v;
}

static int opt_bool(lua_State *L, int opts, const char *name, int dflt, const char *fname) {
  int v = dflt;
  if (lua_getfield(L, opts, name) != LUA_TNIL) {
    if (!lua_isboolean(L, -1)) luaL_error(L, "%s: opts.%s must be a boolean", fname, name);
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static size_t opt_size(lua_State *L, int opts, const char *name, const char *fname) {
  lua_Integer v = 0;
  if (lua_getfield(L, opts, name) != LUA_TNIL) {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 1) luaL_error(L, "%s: opts.%s must be a positive integer", fname, name);
  }
  lua_pop(L, 1);
  return (size_t)v;
}

static int opt_version(lua_State *L, int opts, const char *name, const char *fname) {
  const char *v = opt_string(L, opts, name, fname);
  if (v == NULL) return 0;
  if (strcmp(v, "TLSv1.2") == 0 || strcmp(v, "1.2") == 0) return TLS1_2_VERSION;
  if (strcmp(v, "TLSv1.3") == 0 || strcmp(v, "1.3") == 0) return TLS1_3_VERSION;
  return luaL_error(L, "%s: opts.%s must be \"TLSv1.2\" or \"TLSv1.3\"", fname, name);
}

/* opts.alpn (a list of names, or one name) in wire format, into b. */
static size_t opt_alpn(lua_State *L, int opts, unsigned char *b, size_t cap, const char *fname) {
  size_t n = 0;
  int t = lua_getfield(L, opts, "alpn");
  if (t == LUA_TSTRING) {
    lua_createtable(L, 1, 0);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);
  } else if (t != LUA_TTABLE && t != LUA_TNIL) {
    luaL_error(L, "%s: opts.alpn must be a list of protocol names", fname);
  }
  if (t != LUA_TNIL) {
    for (lua_Integer i = 1;; i++) {
      if (lua_rawgeti(L, -1, i) == LUA_TNIL) {
        lua_pop(L, 1);
        break;
      }
      size_t len;
      const char *p = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
      if (p == NULL || len == 0 || len > 255 || n + 1 + len > cap)
        luaL_error(L, "%s: opts.alpn[%d] must be a name of 1 to 255 bytes", fname, (int)i);
      b[n++] = (unsigned char)len;
      memcpy(b + n, p, len);
      n += len;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return n;
}

static int add_sni(lua_State *L, int idx, qn_tls_ctx *ctx, const char *fname);

/* A new context from the option table at idx: pushes it (a context
   userdata) and returns 0, or pushes nil, msg, code and returns 3. */
static int new_context(lua_State *L, int idx, int server, const char *fname) {
  qn_tls_config c;
  unsigned char alpn[1024];
  memset(&c, 0, sizeof c);
  c.server = server;
  c.verify = !server;
  if (lua_getfield(L, idx, "verify") != LUA_TNIL) {
    if (lua_isboolean(L, -1)) {
      c.verify = lua_toboolean(L, -1);
    } else {
      const char *v = lua_tostring(L, -1);
      if (v != NULL && strcmp(v, "peer") == 0) c.verify = 1;
      else if (v != NULL && strcmp(v, "none") == 0) c.verify = 0;
      else luaL_error(L, "%s: opts.verify must be a boolean, \"peer\" or \"none\"", fname);
    }
  }
  lua_pop(L, 1);
  c.cafile = opt_string(L, idx, "cafile", fname);
  c.capath = opt_string(L, idx, "capath", fname);
  c.certificate = opt_string(L, idx, "certificate", fname);
  c.key = opt_string(L, idx, "key", fname);
  c.password = opt_string(L, idx, "password", fname);
  c.ciphers = opt_string(L, idx, "ciphers", fname);
  c.ciphersuites = opt_string(L, idx, "ciphersuites", fname);
  c.min_version = opt_version(L, idx, "min_version", fname);
  c.max_version = opt_version(L, idx, "max_version", fname);
  c.ignore_unexpected_eof = opt_bool(L, idx, "ignore_unexpected_eof", 0, fname);
  c.alpn_len = opt_alpn(L, idx, alpn, sizeof alpn, fname);
  c.alpn = alpn;
  if (server && c.verify && c.cafile == NULL && c.capath == NULL)
    luaL_error(L, "%s: opts.verify = \"peer\" on a server needs opts.cafile or opts.capath",
               fname);
  if (server && (c.certificate == NULL || c.key == NULL))
    luaL_error(L, "%s: a server needs opts.certificate and opts.key", fname);
  int has_sni = lua_getfield(L, idx, "sni") != LUA_TNIL;
  lua_pop(L, 1);
  if (has_sni && !server) luaL_error(L, "%s: opts.sni is for a server", fname);
  lq_context *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->ctx = NULL;
  luaL_setmetatable(L, LQ_CONTEXT);
  char err[300] = "";
  int r = qn_tls_ctx_new(&c, &u->ctx, err, sizeof err);
  if (r == 0) return has_sni ? add_sni(L, idx, u->ctx, fname) : 0;
  if (r != QN_TLS_ECONFIG) return lq_push_fail(L, r);
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", qn_tls_err_name(r), err);
  lua_pushstring(L, qn_tls_err_name(r));
  return 3;
}

/* opts.sni = { [name] = entry }: each entry a table of certificate, key
   (and password), made into a context with the rest of opts (so ALPN,
   ciphers, versions and client-certificate checking are the same for
   every name), or a server quench.tls.context. The context being made is
   on top; it stays there (0), or the failure is pushed above it (3). */
static int add_sni(lua_State *L, int idx, qn_tls_ctx *ctx, const char *fname) {
  int top = lua_gettop(L);
  lua_getfield(L, idx, "sni");
  if (!lua_istable(L, -1) || luaL_testudata(L, -1, LQ_CONTEXT) != NULL)
    luaL_error(L, "%s: opts.sni must be a table of names to certificates", fname);
  int sni = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, sni)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "%s: opts.sni: the keys must be host names", fname);
    const char *name = lua_tostring(L, -2);
    lq_context *given = luaL_testudata(L, -1, LQ_CONTEXT);
    if (given != NULL) {
      if (given->ctx == NULL || !qn_tls_ctx_is_server(given->ctx))
        luaL_error(L, "%s: opts.sni[\"%s\"] must be a server quench.tls.context", fname, name);
    } else if (lua_istable(L, -1)) {
      int e = lua_gettop(L);
      lua_newtable(L);                     /* opts, with the entry's certificate */
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        if (strcmp(k, "sni") == 0 || strcmp(k, "context") == 0 || strcmp(k, "certificate") == 0 ||
            strcmp(k, "key") == 0 || strcmp(k, "password") == 0) {
          lua_pop(L, 1);
          continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, e + 1);
      }
      lua_pushnil(L);
      while (lua_next(L, e)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        if (strcmp(k, "certificate") != 0 && strcmp(k, "key") != 0 && strcmp(k, "password") != 0)
          luaL_error(L, "%s: opts.sni[\"%s\"]: unknown option '%s' (certificate, key, password)",
                     fname, name, k);
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, e + 1);
      }
      int n = new_context(L, e + 1, 1, fname);
      if (n) return n;                     /* its failure, above the context being made */
      given = lua_touserdata(L, -1);
    } else {
      luaL_error(L, "%s: opts.sni[\"%s\"] must be a table (certificate, key) or a context",
                 fname, name);
    }
    int r = qn_tls_ctx_add_sni(ctx, name, given->ctx);
    if (r == UV_EEXIST) luaL_error(L, "%s: opts.sni: \"%s\" is listed twice", fname, name);
    if (r != 0) luaL_error(L, "%s: opts.sni[\"%s\"]: %s", fname, name,
                           r == UV_EINVAL ? "not a usable name or context" : uv_strerror(r));
    lua_settop(L, sni + 1);                /* the key, for lua_next */
  }
  lua_settop(L, top);
  return 0;
}

/* The context for options at idx (nil: defaults): opts.context, or a new
   one; pushed. As new_context, 0 or 3 (a failure pushed). */
static int context_for(lua_State *L, int idx, int server, const char *fname) {
  if (lua_isnoneornil(L, idx)) {
    lua_newtable(L);
    lua_replace(L, idx);
  }
  luaL_checktype(L, idx, LUA_TTABLE);
  if (lua_getfield(L, idx, "context") != LUA_TNIL) {
    lq_context *u = luaL_testudata(L, -1, LQ_CONTEXT);
    if (u == NULL || u->ctx == NULL)
      luaL_error(L, "%s: opts.context must be a quench.tls.context", fname);
    if (qn_tls_ctx_is_server(u->ctx) != server)
      luaL_error(L, "%s: opts.context is a %s context", fname,
                 qn_tls_ctx_is_server(u->ctx) ? "server" : "client");
    return 0;
  }
  lua_pop(L, 1);
  return new_context(L, idx, server, fname);
}

static SSL_SESSION *opt_session(lua_State *L, int idx, const char *fname) {
  SSL_SESSION *sess = NULL;
  if (lua_getfield(L, idx, "session") != LUA_TNIL) {
    lq_session *u = luaL_testudata(L, -1, LQ_SESSION);
    if (u == NULL) luaL_error(L, "%s: opts.session must be a quench.tls.session", fname);
    sess = u->sess;
  }
  lua_pop(L, 1);
  return sess;
}

static qn_tcp_opts tcp_opts(lua_State *L, int idx, const char *fname) {
  qn_tcp_opts o;
  memset(&o, 0, sizeof o);
  o.nodelay = opt_bool(L, idx, "nodelay", 0, fname);
  int t = lua_getfield(L, idx, "keepalive");
  if (t == LUA_TNUMBER) {
    lua_Number d = lua_tonumber(L, -1);
    if (!(d >= 1 && d <= 86400 * 30))
      luaL_error(L, "%s: opts.keepalive: delay must be 1..2592000 s", fname);
    o.keepalive = 1;
    o.keepalive_delay = (unsigned)d;
  } else if (t == LUA_TBOOLEAN) {
    o.keepalive = lua_toboolean(L, -1);
  } else if (t != LUA_TNIL) {
    luaL_error(L, "%s: opts.keepalive must be a boolean or a delay in seconds", fname);
  }
  lua_pop(L, 1);
  o.read_limit = opt_size(L, idx, "read_limit", fname);
  o.write_limit = opt_size(L, idx, "write_limit", fname);
  return o;
}

static int check_port(lua_State *L, int idx) {
  lua_Integer port = luaL_checkinteger(L, idx);
  luaL_argcheck(L, port >= 0 && port <= 65535, idx, "port must be in 0..65535");
  return (int)port;
}

/* ---- contexts and sessions ---- */

static int l_context(lua_State *L) {
  const char *fname = "quench.tls.context";
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  check_keys(L, 1, 0, 0, fname);
  if (lua_getfield(L, 1, "context") != LUA_TNIL) luaL_error(L, "%s: opts.context makes no sense here", fname);
  lua_pop(L, 1);
  int server = opt_bool(L, 1, "server", 0, fname);
  int n = new_context(L, 1, server, fname);
  return n ? n : 1;
}

static int l_context_gc(lua_State *L) {
  lq_context *u = luaL_testudata(L, 1, LQ_CONTEXT);
  if (u != NULL && u->ctx != NULL) qn_tls_ctx_unref(u->ctx);
  if (u != NULL) u->ctx = NULL;
  return 0;
}

static int l_context_tostring(lua_State *L) {
  lq_context *u = luaL_checkudata(L, 1, LQ_CONTEXT);
  lua_pushfstring(L, "quench.tls.context (%s)",
                  u->ctx == NULL ? "freed" : qn_tls_ctx_is_server(u->ctx) ? "server" : "client");
  return 1;
}

static int l_session_gc(lua_State *L) {
  lq_session *u = luaL_testudata(L, 1, LQ_SESSION);
  if (u != NULL && u->sess != NULL) SSL_SESSION_free(u->sess);
  if (u != NULL) u->sess = NULL;
  return 0;
}

/* ---- TLS stream methods ---- */

static qn_stream *tls_live(lua_State *L, const char *fname) {
  return lq_stream_live(L, 1, fname);
}

/* The stream's SSL once its handshake is done, else NULL. */
static SSL *done_ssl(lua_State *L, const char *fname) {
  qn_stream *s = tls_live(L, fname);
  return qn_tls_handshake_state(s) == 1 ? qn_tls_ssl(s) : NULL;
}

static int l_alpn(lua_State *L) {
  SSL *ssl = done_ssl(L, "quench.tls.stream:alpn");
  const unsigned char *p = NULL;
  unsigned len = 0;
  if (ssl != NULL) SSL_get0_alpn_selected(ssl, &p, &len);
  if (p == NULL || len == 0) return 0;
  lua_pushlstring(L, (const char *)p, len);
  return 1;
}

static int l_tls_version(lua_State *L) {
  SSL *ssl = done_ssl(L, "quench.tls.stream:tls_version");
  if (ssl == NULL) return 0;
  lua_pushstring(L, SSL_get_version(ssl));
  return 1;
}

static int l_cipher(lua_State *L) {
  SSL *ssl = done_ssl(L, "quench.tls.stream:cipher");
  if (ssl == NULL) return 0;
  lua_pushstring(L, SSL_get_cipher_name(ssl));
  return 1;
}

static int l_session_reused(lua_State *L) {
  SSL *ssl = done_ssl(L, "quench.tls.stream:session_reused");
  lua_pushboolean(L, ssl != NULL && SSL_session_reused(ssl));
  return 1;
}

/* The session to resume with opts.session on a later connect (TLS 1.3
   sends it after the handshake: read something first), or nil. */
static int l_session(lua_State *L) {
  SSL *ssl = done_ssl(L, "quench.tls.stream:session");
  SSL_SESSION *sess = ssl != NULL ? SSL_get1_session(ssl) : NULL;
  if (sess == NULL) return 0;
  if (!SSL_SESSION_is_resumable(sess)) {
    SSL_SESSION_free(sess);
    return 0;
  }
  lq_session *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->sess = sess;
  luaL_setmetatable(L, LQ_SESSION);
  return 1;
}

/* The SNI name the client asked for (server side), or nil. */
static int l_servername(lua_State *L) {
  qn_stream *s = tls_live(L, "quench.tls.stream:servername");
  SSL *ssl = qn_tls_ssl(s);
  const char *n = ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
  if (n == NULL) return 0;
  lua_pushstring(L, n);
  return 1;
}

static void push_bio(lua_State *L, BIO *b) {
  char *p;
  long n = BIO_get_mem_data(b, &p);
  lua_pushlstring(L, p, n > 0 ? (size_t)n : 0);
}

static void push_name(lua_State *L, const X509_NAME *name) {
  BIO *b = BIO_new(BIO_s_mem());
  if (b == NULL) luaL_error(L, "quench.tls.stream:peer_certificate: out of memory");
  X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
  push_bio(L, b);
  BIO_free(b);
}

static void push_time(lua_State *L, const ASN1_TIME *t) {
  struct tm tm;
  if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
    lua_pushnil(L);
    return;
  }
  /* days from civil (Howard Hinnant's algorithm): UTC seconds, no timegm */
  int y = tm.tm_year + 1900, m = tm.tm_mon + 1, d = tm.tm_mday;
  y -= m <= 2;
  long era = (y >= 0 ? y : y - 399) / 400;
  long yoe = y - era * 400;
  long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  long long days = (long long)era * 146097 + doe - 719468;
  lua_pushinteger(L, (lua_Integer)(days * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec));
}

static void push_alt_names(lua_State *L, X509 *x) {
  lua_newtable(L);
  GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  if (names == NULL) return;
  int k = 0;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
    if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI) {
      const char *kind = g->type == GEN_DNS ? "DNS" : g->type == GEN_EMAIL ? "email" : "URI";
      const ASN1_IA5STRING *v = g->d.ia5;
      lua_pushfstring(L, "%s:", kind);
      lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v));
      lua_concat(L, 2);
    } else if (g->type == GEN_IPADD) {
      char text[INET6_ADDRSTRLEN] = "?";
      int len = ASN1_STRING_length(g->d.ip);
      const unsigned char *p = ASN1_STRING_get0_data(g->d.ip);
      if (len == 4) inet_ntop(AF_INET, p, text, sizeof text);
      else if (len == 16) inet_ntop(AF_INET6, p, text, sizeof text);
      lua_pushfstring(L, "IP:%s", text);
    } else {
      continue;
    }
    lua_rawseti(L, -2, ++k);
  }
  GENERAL_NAMES_free(names);
}

/* peer_certificate(): the peer's certificate as a table (subject, issuer,
   serial, not_before, not_after, sha256, alt_names, pem), or nil. */
static int l_peer_certificate(lua_State *L) {
  SSL *ssl = done_ssl(L, "quench.tls.stream:peer_certificate");
  X509 *x = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
  if (x == NULL) return 0;
  lua_createtable(L, 0, 8);
  push_name(L, X509_get_subject_name(x));
  lua_setfield(L, -2, "subject");
  push_name(L, X509_get_issuer_name(x));
  lua_setfield(L, -2, "issuer");
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  lua_pushstring(L, hex ? hex : "");
  lua_setfield(L, -2, "serial");
  OPENSSL_free(hex);
  BN_free(bn);
  push_time(L, X509_get0_notBefore(x));
  lua_setfield(L, -2, "not_before");
  push_time(L, X509_get0_notAfter(x));
  lua_setfield(L, -2, "not_after");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  if (X509_digest(x, EVP_sha256(), md, &mdlen) == 1) {
    char fp[EVP_MAX_MD_SIZE * 3 + 1];
    for (unsigned i = 0; i < mdlen; i++) snprintf(fp + 3 * i, 4, "%02X:", md[i]);
    fp[mdlen ? 3 * mdlen - 1 : 0] = '\0';
    lua_pushstring(L, fp);
    lua_setfield(L, -2, "sha256");
  }
  push_alt_names(L, x);
  lua_setfield(L, -2, "alt_names");
  BIO *b = BIO_new(BIO_s_mem());
  if (b != NULL && PEM_write_bio_X509(b, x) == 1) {
    push_bio(L, b);
    lua_setfield(L, -2, "pem");
  }
  BIO_free(b);
  return 1;
}

/* ---- the handshake ---- */

static int handshake_results(lua_State *L, qn_stream *s, qn_future *f) {
  int r = qn_tls_handshake_status(f);
  if (r != 0) return lq_stream_fail(L, s, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* stream:handshake() is one lq_obj_kind (lua/binding.h) given the
   stream: the direct form's operand is the stream at 1, an op's its user
   value 1. A handshake already done is ready at once. */
static void handshake_check(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  lq_stream *u = obj;
  /* the direct form checked before it asked for its task (tls_live) */
  if (op != 0 && (u->s == NULL || !lq_alive(L, u->serial) || qn_stream_is_closed(u->s)))
    luaL_error(L, "quench.tls.stream:handshake_op: attempt to use a closed stream");
}

static int handshake_now(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)op, (void)c;
  if (qn_tls_handshake_state(((lq_stream *)obj)->s) != 1) return -1;
  lua_pushboolean(L, 1);
  return 1;
}

static qn_future *handshake_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)L, (void)op, (void)c;
  return qn_tls_handshake_new(((lq_stream *)obj)->s);
}

static int handshake_finish(lua_State *L, void *obj, int op, qn_future *f) {
  (void)op;
  return handshake_results(L, ((lq_stream *)obj)->s, f);
}

static const lq_obj_kind handshake_kind = LQ_OBJ_KIND("tls handshake", handshake_check,
                                                      handshake_start, handshake_finish,
                                                      handshake_now);
LQ_OBJ_PERFORM_K(handshake_k, handshake_kind)

/* stream:handshake(): true once done, or nil, msg, code (then the stream
   cannot be used; a dropped handshake closes it). */
static int l_handshake(lua_State *L) {
  const char *fname = "quench.tls.stream:handshake";
  tls_live(L, fname);
  lq_coro *c = lq_await_ctx(L, fname);
  lua_settop(L, 1);
  return lq_obj_perform(L, c, &handshake_kind, lua_touserdata(L, 1), fname, NULL, handshake_k);
}

static int l_handshake_op(lua_State *L) {
  tls_live(L, "quench.tls.stream:handshake_op");
  return lq_op_for(L, &handshake_kind.base, 1);
}

/* ---- starting TLS on a stream ---- */

/* stream:starttls is one lq_obj_kind given the TCP stream, over the core's
   TLS start future (core/tls_start.c): the operands are the stream (1),
   the options (2), the context (3) and the name to verify (4, nil for a
   server), all checked and made by the direct form before it performs.
   start attaches TLS at once: the same userdata becomes a TLS stream
   (new class and metatable); a failure closes the stream. */
static void starttls_check(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)op, (void)c;
  const char *fname = "quench.tcp.stream:starttls";
  qn_stream *s = ((lq_stream *)obj)->s;
  if (qn_stream_readers(s) > 0 || qn_stream_writers(s) > 0)
    luaL_error(L, "%s: a read or write is waiting on this stream", fname);
  if (qn_stream_is_shut(s)) luaL_error(L, "%s: the stream's write side was shut down", fname);
}

static qn_future *starttls_start(lua_State *L, void *obj, int op, lq_coro *c) {
  (void)c;
  lq_stream *u = obj;
  int top = lua_gettop(L);
  lq_op_arg(L, op, 2);
  lq_op_arg(L, op, 3);
  lq_op_arg(L, op, 4);
  lua_getfield(L, top + 1, "session");           /* checked: nil or a session */
  lq_session *su = lua_touserdata(L, -1);
  lq_context *cu = lua_touserdata(L, top + 2);
  qn_future *f = qn_tls_start_new(u->s, cu->ctx, lua_tostring(L, top + 3),
                                  su != NULL ? su->sess : NULL);
  if (f != NULL && qn_stream_is_tls(u->s) && u->cls != &lq_tls_stream_class) {
    u->cls = &lq_tls_stream_class;              /* the same userdata, now a TLS stream */
    lq_op_arg(L, op, 1);
    luaL_setmetatable(L, "quench.tls.stream");
  }
  lua_settop(L, top);
  return f;
}

/* The stream, its handshake done, or nil, msg, code (the stream is closed). */
static int starttls_finish(lua_State *L, void *obj, int op, qn_future *f) {
  lq_stream *u = obj;
  int r = qn_tls_start_status(f);
  if (r != 0) return lq_stream_fail(L, u->s, r);
  lq_op_arg(L, op, 1);
  return 1;
}

static const lq_obj_kind starttls_kind = LQ_OBJ_KIND("tls handshake", starttls_check,
                                                     starttls_start, starttls_finish, NULL);
LQ_OBJ_PERFORM_K(starttls_k, starttls_kind)

/* tcp_stream:starttls(opts): the same stream, now TLS (its handshake
   done; opts.server = true for the server side), or nil, msg, code (the
   stream is then closed). */
static int l_starttls(lua_State *L) {
  const char *fname = "quench.tcp.stream:starttls";
  lq_stream_live(L, 1, fname);
  lq_coro *c = lq_await_ctx(L, fname);
  lua_settop(L, 2);
  if (lua_isnil(L, 2)) {
    lua_newtable(L);
    lua_replace(L, 2);
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  check_keys(L, 2, 0, 0, fname);
  int server = opt_bool(L, 2, "server", 0, fname);
  const char *servername = opt_string(L, 2, "servername", fname);
  opt_session(L, 2, fname);
  if (!server && servername == NULL) {
    lua_getfield(L, 2, "verify");
    int verify = lua_isnil(L, -1) || (lua_toboolean(L, -1) && !(lua_type(L, -1) == LUA_TSTRING &&
                                      strcmp(lua_tostring(L, -1), "none") == 0));
    lua_pop(L, 1);
    if (verify) luaL_error(L, "%s: opts.servername is needed to verify the peer "
                           "(or verify = false)", fname);
  }
  starttls_check(L, lua_touserdata(L, 1), 0, c);   /* before a context is made */
  int n = context_for(L, 2, server, fname);   /* at 3 */
  if (n) return n;
  if (server || servername == NULL) lua_pushnil(L);
  else lua_pushstring(L, servername);         /* at 4 */
  return lq_obj_perform(L, c, &starttls_kind, lua_touserdata(L, 1), fname, NULL, starttls_k);
}

/* ---- connecting ---- */

/* quench.tls.connect is one lq_op_kind over the core's TLS connect future
   (core/tls_start.c): a TCP connect, then the handshake. Its operands are
   the host (1), the port (2), the options (3), the context (4) and the
   name to verify (5). The direct form checks its options and makes 4 and
   5 before it performs; tls.connect_op checks its arguments when made and
   its options when awaited (a bad option raises then, naming
   quench.tls.connect), keeping 4 and 5 in its user values, or a context
   that could not be made as a failure: user value 4 false, 5 the message,
   6 the code, which the op returns at once. */

/* Check the options at idx (a table) for a connect to host; push the
   context and the name to verify (0), or nil, msg, code (3: the context
   could not be made). */
static int connect_prepare(lua_State *L, int idx, const char *host, const char *fname) {
  check_keys(L, idx, 1, 0, fname);
  if (opt_bool(L, idx, "server", 0, fname)) luaL_error(L, "%s: opts.server: connect is a client", fname);
  tcp_opts(L, idx, fname);
  opt_session(L, idx, fname);
  int n = context_for(L, idx, 0, fname);
  if (n) return n;
  const char *servername = opt_string(L, idx, "servername", fname);
  lua_pushstring(L, servername ? servername : host);
  return 0;
}

static void connect_check(lua_State *L, int op, lq_coro *c) {
  (void)c;
  if (op == 0) return;                        /* the direct form prepared its operands */
  int top = lua_gettop(L);
  lua_getiuservalue(L, op, 3);
  lua_getiuservalue(L, op, 1);
  if (connect_prepare(L, top + 1, lua_tostring(L, top + 2), "quench.tls.connect") == 0) {
    lua_setiuservalue(L, op, 5);
    lua_setiuservalue(L, op, 4);
  } else {
    lua_setiuservalue(L, op, 6);
    lua_setiuservalue(L, op, 5);
    lua_pushboolean(L, 0);
    lua_setiuservalue(L, op, 4);
    lua_pop(L, 1);                            /* the failure's nil */
  }
  lua_settop(L, top);
}

/* An op whose context could not be made fails at once. */
static int connect_now(lua_State *L, int op) {
  if (op == 0) return -1;
  if (lua_getiuservalue(L, op, 4) != LUA_TBOOLEAN) {
    lua_pop(L, 1);
    return -1;
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_getiuservalue(L, op, 5);
  lua_getiuservalue(L, op, 6);
  return 3;
}

static qn_future *connect_start(lua_State *L, int op, lq_coro *c) {
  const char *fname = "quench.tls.connect";
  int top = lua_gettop(L);
  for (int i = 1; i <= 5; i++) lq_op_arg(L, op, i);
  qn_tcp_opts o = tcp_opts(L, top + 3, fname);   /* checked: no raise */
  SSL_SESSION *sess = opt_session(L, top + 3, fname);
  lq_context *cu = lua_touserdata(L, top + 4);
  qn_future *f = qn_tls_connect_new(c->rt->core, lua_tostring(L, top + 1),
                                    (int)lua_tointeger(L, top + 2), &o, cu->ctx,
                                    lua_tostring(L, top + 5), sess);
  lua_settop(L, top);
  return f;
}

/* A TLS stream, its handshake done, or nil, msg, code. */
static int connect_finish(lua_State *L, int op, qn_future *f) {
  (void)op;
  luaL_checkstack(L, 4, NULL);
  int r = qn_tls_start_status(f);
  if (r != 0) {
    qn_stream *s = qn_tls_start_stream(f);
    return s != NULL ? lq_stream_fail(L, s, r) : lq_push_fail(L, r);
  }
  lq_stream *u = lq_stream_new(L, &lq_tls_stream_class, "");   /* first: it may raise */
  u->s = qn_tls_connect_take(f);
  u->serial = lq_module_of(L)->rt->serial;
  return 1;
}

static const lq_op_kind connect_kind = { "tls connect", connect_check, connect_start,
                                         connect_finish, connect_now };

/* Make opts (3) a table (nil: an empty one), or raise as check does. */
static void connect_opts(lua_State *L, void (*bad)(lua_State *, int, const char *)) {
  lua_settop(L, 3);
  if (lua_isnil(L, 3)) {
    lua_newtable(L);
    lua_replace(L, 3);
  }
  if (!lua_istable(L, 3)) bad(L, 3, "table");
}

static void bad_connect_arg(lua_State *L, int i, const char *expected) {
  luaL_checktype(L, i, expected[0] == 't' ? LUA_TTABLE : LUA_TSTRING);
}

/* connect_op's messages: the ones its first (Lua) version gave. */
static void bad_connect_op_arg(lua_State *L, int i, const char *expected) {
  const char *got = lua_type(L, i) == LUA_TNUMBER ? lua_tostring(L, i) : luaL_typename(L, i);
  luaL_error(L, "bad argument #%d to 'quench.tls.connect_op' (%s expected, got %s)", i,
             expected, got);
}
/* quench.tls.connect(host, port [, opts]): a TLS stream, its handshake
   done, or nil, msg, code. */
static int l_connect(lua_State *L) {
  const char *fname = "quench.tls.connect";
  lq_check_cstring(L, 1, fname, "argument #1 (host)");
  check_port(L, 2);
  connect_opts(L, bad_connect_arg);
  lq_coro *c = lq_await_ctx(L, fname);
  int n = connect_prepare(L, 3, lua_tostring(L, 1), fname);   /* at 4, 5 */
  if (n) return n;
  return lq_perform(L, c, &connect_kind, 0, fname, NULL);
}

/* quench.tls.connect_op(host, port [, opts]): the op of quench.tls.connect;
   it connects when awaited or selected. */
static int l_connect_op(lua_State *L) {
  const char *fname = "quench.tls.connect_op";
  if (lua_type(L, 1) != LUA_TSTRING) bad_connect_op_arg(L, 1, "string");
  lq_check_cstring(L, 1, fname, "argument #1 (host)");
  if (!lua_isinteger(L, 2) || lua_tointeger(L, 2) < 0 || lua_tointeger(L, 2) > 65535) {
    const char *got = lua_type(L, 2) == LUA_TNUMBER ? lua_tostring(L, 2) : luaL_typename(L, 2);
    luaL_error(L, "bad argument #2 to '%s' (port must be an integer in 0..65535, got %s)",
               fname, got);
  }
  connect_opts(L, bad_connect_op_arg);
  lq_op_new(L, &connect_kind, 6);
  for (int i = 1; i <= 3; i++) {
    lua_pushvalue(L, i);
    lua_setiuservalue(L, -2, i);
  }
  return 1;
}

/* ---- servers ---- */

/* A TLS server is a TCP server (lua/tcp.c) whose class attaches its
   context to each accepted stream. */
static int attach_accepted(qn_stream *s, void *ctx) {
  return qn_tls_attach(s, ctx, NULL, NULL);
}

static void release_ctx(void *ctx) {
  qn_tls_ctx_unref(ctx);
}

static const lq_server_class tls_server_class =
  LQ_SERVER_CLASS("quench.tls.server", "tls", &lq_tls_stream_class, attach_accepted, release_ctx);

/* quench.tls.listen(host, port, opts): a server whose accept returns TLS
   streams at once (the handshake runs when the stream is first used), or
   nil, msg, code. opts needs certificate and key. */
static int l_listen(lua_State *L) {
  const char *fname = "quench.tls.listen";
  lq_runtime *rt = lq_runtime_of(L, fname);
  const char *host = luaL_optstring(L, 1, "*");
  if (strcmp(host, "*") == 0) host = "0.0.0.0";
  int port = check_port(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  check_keys(L, 3, 1, 1, fname);
  if (lua_getfield(L, 3, "server") != LUA_TNIL && !lua_toboolean(L, -1))
    luaL_error(L, "%s: opts.server: a listener is a server", fname);
  lua_pop(L, 1);
  qn_tcp_opts o = tcp_opts(L, 3, fname);
  size_t backlog = opt_size(L, 3, "backlog", fname);
  luaL_argcheck(L, backlog <= 65535, 3, "opts.backlog must be at most 65535");
  unsigned flags = 0;
  if (opt_bool(L, 3, "reuseaddr", 1, fname)) flags |= QN_TCP_REUSEADDR;
  if (opt_bool(L, 3, "reuseport", 0, fname)) flags |= QN_TCP_REUSEPORT;
  if (opt_bool(L, 3, "ipv6only", 0, fname)) flags |= QN_TCP_IPV6ONLY;
  int n = context_for(L, 3, 1, fname);      /* at 4 */
  if (n) return n;
  lq_context *cu = lua_touserdata(L, 4);
  qn_tcp_server **srv = lq_server_new(L, &tls_server_class, rt->serial, cu->ctx);
  qn_tls_ctx_ref(cu->ctx);              /* the server's, released by release_ctx */
  int r = qn_tcp_listen(rt->core, host, port, (int)backlog, flags, &o, srv);
  if (r != 0) return lq_push_fail(L, r);
  return 1;
}


/* ---- registration ---- */

static const luaL_Reg stream_methods[] = {
  {"handshake", l_handshake}, {"handshake_op", l_handshake_op}, {"alpn", l_alpn},
  {"tls_version", l_tls_version}, {"cipher", l_cipher},
  {"peer_certificate", l_peer_certificate}, {"session", l_session},
  {"session_reused", l_session_reused}, {"servername", l_servername}, {NULL, NULL}
};

static const luaL_Reg context_metamethods[] = {
  {"__gc", l_context_gc}, {"__tostring", l_context_tostring}, {NULL, NULL}
};

static const luaL_Reg session_metamethods[] = { {"__gc", l_session_gc}, {NULL, NULL} };

static const luaL_Reg no_methods[] = { {NULL, NULL} };

static const luaL_Reg functions[] = {
  {"connect", l_connect}, {"connect_op", l_connect_op}, {"listen", l_listen},
  {"context", l_context}, {NULL, NULL}
};

/* quench.tls = {connect, connect_op, listen, context}; tcp streams gain starttls. The
   module table is on top; lq_tcp_register has run. */
void lq_tls_register(lua_State *L, int mod) {
  lq_stream_register(L, mod, &lq_tls_stream_class, lq_tcp_stream_methods);
  luaL_getmetatable(L, "quench.tls.stream");
  lua_getfield(L, -1, "__index");
  lua_pushvalue(L, mod);
  lua_pushlightuserdata(L, (void *)&lq_tls_stream_class);
  luaL_setfuncs(L, stream_methods, 2);
  lua_pop(L, 2);
  luaL_getmetatable(L, "quench.tcp.stream");
  lua_getfield(L, -1, "__index");
  lua_pushvalue(L, mod);
  lua_pushlightuserdata(L, (void *)&lq_tcp_stream_class);
  lua_pushcclosure(L, l_starttls, 2);
  lua_setfield(L, -2, "starttls");
  lua_pop(L, 2);
  lq_server_register(L, mod, &tls_server_class, lq_tcp_server_methods);
  lq_class(L, mod, LQ_CONTEXT, no_methods, context_metamethods);
  lq_class(L, mod, LQ_SESSION, no_methods, session_metamethods);
  lua_newtable(L);
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, functions, 1);
  lua_setfield(L, -2, "tls");
}
