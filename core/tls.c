/*
** TLS: OpenSSL 3 over a quench stream, the way Node's TLSWrap does it on
** libuv: the SSL object's BIO reads ciphertext from a buffer the socket
** was read into and writes records to a buffer that is then written to
** the socket. Ciphertext never leaves the core, and the reactor is
** unchanged: stream.c calls in here where a TLS stream differs (reading
** into the cipher buffer, writing, shutdown, close), and everything else
** (read futures waiting on the plaintext buffer, the write queue and its
** limit, lingering) is the plain stream's.
**
** Loop side only. Records are decrypted in the read callback and when a
** read consumes plaintext (qn__tls_pump), never inside a future's poll: a
** dropped read cannot leave the record layer half way (the embedded-tls
** pitfall); the plaintext it did not take stays in the stream's buffer.
** Decryption stops when the plaintext buffer reaches the read limit, and
** raw reading pauses while the cipher buffer has records left, so memory
** stays bounded by the limit plus one cipher buffer.
**
** The handshake starts when something first needs it (a read, writable or
** handshake future's poll, a peek, a write) and then runs here as bytes
** arrive. A future dropped while it runs closes the stream (qn__tls_dropped):
** a handshake is one op, never resumed half done.
**
** Output. Every SSL call that may produce records (handshake steps, reads:
** TLS 1.3 tickets and KeyUpdate answers, alerts; writes; shutdown) is
** followed by flush(), which writes the records: what the socket does not
** take at once is queued in the output buffer itself (the write request
** owns it; no copy). With this BIO a write never waits, so SSL_write takes
** a whole chunk at once and a write is encrypted entirely before the call
** returns. A large write is encrypted 64 KiB at a time into buffers of
** one fixed size, which come back when written and are reused while the
** queue is not empty (bench/tls.sh: without this, the allocator returned
** freed buffers to the kernel and every chunk faulted in fresh pages,
** three times the CPU time with the reader in another process).
**
** Memory. The state (struct qn__tls) and the buffers come from the
** runtime's allocator; an idle stream keeps one output buffer (at most
** OBUF_KEEP bytes) and the cipher buffer; the SSL object and context from OpenSSL's. A
** context is reference counted: each TLS stream holds one.
*/
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "internal.h"

enum {
  CBUF_SIZE = 64 * 1024,    /* the socket is read into this much ciphertext room */
  SPARES_MAX = 16,          /* output buffers kept for reuse during a burst of writes */
  PLAIN_ROOM = 16 * 1024,   /* one record's plaintext: room made before each SSL_read */
  WRITE_CHUNK = 64 * 1024,  /* a write is encrypted and queued this much at a time */
  RECORD_MAX = 16 * 1024,   /* plaintext per record */
  RECORD_EXTRA = 320,       /* a record's header, tag, MAC and padding, at most */
  /* the records of one chunk: an emptied output buffer larger is freed */
  OBUF_KEEP = WRITE_CHUNK + (WRITE_CHUNK / RECORD_MAX + 1) * RECORD_EXTRA
};

enum { HS_IDLE, HS_RUNNING, HS_DONE, HS_FAILED };

typedef struct sni_entry {
  char *name;               /* lower case; "*.example.com" matches one label */
  qn_tls_ctx *ctx;
} sni_entry;

struct qn_tls_ctx {
  SSL_CTX *ssl_ctx;
  BIO_METHOD *meth;         /* the BIO over a stream's buffers */
  unsigned char *alpn;      /* server: the protocols it accepts, wire format */
  size_t alpn_len;
  sni_entry *sni;           /* server: the certificates chosen by SNI name */
  size_t nsni;
  int refs;
  uint8_t server, verify, ignore_eof;
};

typedef struct qn__tls {
  SSL *ssl;
  qn_tls_ctx *ctx;
  char *cbuf;               /* ciphertext read, cbuf[coff .. clen) not yet given to SSL */
  size_t coff, clen, ccap;
  char *obuf;               /* records made, not yet written */
  size_t olen, ocap;
  char *spares;             /* written output buffers of OBUF_KEEP bytes, linked through
                               their first word, kept while writes are queued */
  unsigned nspares;
  int raw_err;              /* the socket's EOF or read error, once seen */
  int err;                  /* the handshake's failure */
  uint8_t hs, oom, notify_sent;
  char msg[256];
} qn__tls;

/* ---- the BIO ---- */

/* Room for len more bytes of records in the output buffer. */
static int obuf_reserve(qn_stream *s, size_t len) {
  qn__tls *t = s->tls;
  if (t->ocap - t->olen >= len) return 0;
  size_t need = t->olen + len, cap = t->ocap ? 2 * t->ocap : 16 * 1024;
  if (cap < need) cap = need;   /* a chunk's records: exactly, so OBUF_KEEP keeps it */
  char *p = qn__realloc(s->rt, t->obuf, cap);
  if (p == NULL) return UV_ENOMEM;
  t->obuf = p;
  t->ocap = cap;
  return 0;
}

static void free_spares(qn_stream *s, qn__tls *t) {
  while (t->spares != NULL) {
    char *next;
    memcpy(&next, t->spares, sizeof next);
    qn__free(s->rt, t->spares);
    t->spares = next;
  }
  t->nspares = 0;
}

/* Output room for a whole chunk's records (a write of more than one
   record): a buffer of exactly OBUF_KEEP bytes, reused if one is spare.
   Buffers of a fixed size, kept while writes are queued, are why a long
   transfer does not allocate, free, and fault in fresh pages chunk after
   chunk (the allocator trims freed memory at the heap's top). */
static int obuf_chunk(qn_stream *s) {
  qn__tls *t = s->tls;
  if (t->ocap - t->olen >= OBUF_KEEP) return 0;
  if (t->olen == 0) {       /* exactly OBUF_KEEP, so that it comes back for reuse */
    char *p = t->spares;
    if (p != NULL) {
      memcpy(&t->spares, p, sizeof t->spares);
      t->nspares--;
    } else if ((p = qn__malloc(s->rt, OBUF_KEEP)) == NULL) {
      return UV_ENOMEM;
    }
    qn__free(s->rt, t->obuf);
    t->obuf = p;
    t->ocap = OBUF_KEEP;
    return 0;
  }
  return obuf_reserve(s, OBUF_KEEP - t->olen);
}

/* Records go to the output buffer; flush() writes them. (Writing each
   record straight to the socket saves this copy but costs a system call
   per 16 KiB record: no faster, measured.) */
static int bio_write(BIO *b, const char *data, int len) {
  qn_stream *s = BIO_get_data(b);
  qn__tls *t = s->tls;
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  if (obuf_reserve(s, (size_t)len) != 0) {
    t->oom = 1;             /* SSL sees a failed write: SSL_ERROR_SYSCALL */
    return -1;
  }
  memcpy(t->obuf + t->olen, data, (size_t)len);
  t->olen += (size_t)len;
  return len;
}

static int bio_read(BIO *b, char *out, int len) {
  qn_stream *s = BIO_get_data(b);
  qn__tls *t = s->tls;
  BIO_clear_retry_flags(b);
  size_t avail = t->clen - t->coff;
  if (avail == 0) {
    BIO_set_retry_read(b);  /* more will come (EOF is ours to judge: raw_err) */
    return -1;
  }
  size_t n = (size_t)len < avail ? (size_t)len : avail;
  memcpy(out, t->cbuf + t->coff, n);
  t->coff += n;
  if (t->coff == t->clen) t->coff = t->clen = 0;
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)num; (void)ptr;
  qn_stream *s = BIO_get_data(b);
  switch (cmd) {
  case BIO_CTRL_FLUSH: return 1;
  case BIO_CTRL_PENDING: return s && s->tls ? (long)(s->tls->clen - s->tls->coff) : 0;
  case BIO_CTRL_WPENDING: return 0;
  default: return 0;
  }
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

/* ---- errors ---- */

static void set_msg(qn__tls *t, const char *prefix, const char *text) {
  snprintf(t->msg, sizeof t->msg, "%s%s%s", prefix, *prefix && *text ? ": " : "", text);
}

/* The code and message of a failed handshake or read, from the verify
   result and OpenSSL's error queue (which it empties). */
static int classify(qn__tls *t, int in_handshake) {
  unsigned long e = ERR_peek_last_error();
  long v = SSL_get_verify_result(t->ssl);
  char reason[200] = "";
  if (e != 0) ERR_error_string_n(e, reason, sizeof reason);
  const char *lib_reason = e ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  if (in_handshake && v != X509_V_OK && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    set_msg(t, "certificate verify failed", X509_verify_cert_error_string(v));
    switch (v) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return QN_TLS_EUNKNOWN_CA;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return QN_TLS_EEXPIRED;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return QN_TLS_EHOSTNAME;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return QN_TLS_ESELF_SIGNED;
    default:
      return QN_TLS_EVERIFY;
    }
  }
  set_msg(t, in_handshake ? "handshake failed" : "TLS error",
          lib_reason ? lib_reason : (reason[0] ? reason : "unknown error"));
  if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL) {
    switch (ERR_GET_REASON(e)) {
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_UNEXPECTED_RECORD:
    case SSL_R_UNEXPECTED_MESSAGE:
    case SSL_R_LENGTH_MISMATCH:
    case SSL_R_BAD_PACKET_LENGTH:
      if (in_handshake) {
        set_msg(t, "the peer does not speak TLS", lib_reason ? lib_reason : "");
        return QN_TLS_ENOT_TLS;
      }
      break;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
      set_msg(t, "no TLS version in common", lib_reason ? lib_reason : "");
      return QN_TLS_EVERSION;
    default:
      break;
    }
  }
  return in_handshake ? QN_TLS_EHANDSHAKE : QN_TLS_EPROTOCOL;
}

const char *qn_tls_err_name(int code) {
  switch (code) {
  case QN_TLS_EHANDSHAKE: return "ETLS_HANDSHAKE";
  case QN_TLS_EVERIFY: return "ETLS_VERIFY";
  case QN_TLS_EUNKNOWN_CA: return "ETLS_UNKNOWN_CA";
  case QN_TLS_EEXPIRED: return "ETLS_EXPIRED";
  case QN_TLS_EHOSTNAME: return "ETLS_HOSTNAME";
  case QN_TLS_ESELF_SIGNED: return "ETLS_SELF_SIGNED";
  case QN_TLS_ENOT_TLS: return "ETLS_NOT_TLS";
  case QN_TLS_EVERSION: return "ETLS_VERSION";
  case QN_TLS_EPROTOCOL: return "ETLS_PROTOCOL";
  case QN_TLS_ETRUNCATED: return "ETLS_TRUNCATED";
  case QN_TLS_ECONFIG: return "ETLS_CONFIG";
  default: return NULL;
  }
}

const char *qn_tls_error_message(const qn_stream *s) { return s->tls ? s->tls->msg : ""; }

/* ---- contexts ---- */

static int pem_text(const char *v) { return strncmp(v, "-----BEGIN", 10) == 0; }

static int password_cb(char *buf, int size, int rwflag, void *ud) {
  (void)rwflag;
  const char *pw = ud;
  if (pw == NULL) return 0;
  size_t n = strlen(pw);
  if (n > (size_t)size) n = (size_t)size;
  memcpy(buf, pw, n);
  return (int)n;
}

/* The server's ALPN choice: its own order of preference wins. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg) {
  (void)ssl;
  qn_tls_ctx *c = arg;
  unsigned char *o;
  if (SSL_select_next_proto(&o, outlen, c->alpn, (unsigned)c->alpn_len, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;            /* none in common: go on without ALPN */
  *out = o;
  return SSL_TLSEXT_ERR_OK;
}

static int config_fail(char *err, size_t errlen, const char *what, const char *detail) {
  unsigned long e = ERR_peek_last_error();
  char reason[160] = "";
  if (e != 0) snprintf(reason, sizeof reason, ": %s", ERR_reason_error_string(e) ?
                       ERR_reason_error_string(e) : "unknown error");
  ERR_clear_error();
  snprintf(err, errlen, "%s%s%s%s", what, detail ? " " : "", detail ? detail : "", reason);
  return QN_TLS_ECONFIG;
}

static int load_cert(SSL_CTX *ctx, const char *v, char *err, size_t errlen) {
  if (!pem_text(v)) {
    if (SSL_CTX_use_certificate_chain_file(ctx, v) != 1)
      return config_fail(err, errlen, "opts.certificate: cannot use", v);
    return 0;
  }
  BIO *b = BIO_new_mem_buf(v, -1);
  X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
  int ok = x != NULL && SSL_CTX_use_certificate(ctx, x) == 1;
  X509_free(x);
  while (ok && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {   /* the chain */
    if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
      X509_free(x);
      ok = 0;
    }
  }
  BIO_free(b);
  if (!ok) return config_fail(err, errlen, "opts.certificate: cannot use the PEM text", NULL);
  ERR_clear_error();                        /* the end of the chain left one */
  return 0;
}

static int load_key(SSL_CTX *ctx, const char *v, const char *pw, char *err, size_t errlen) {
  if (!pem_text(v)) {
    SSL_CTX_set_default_passwd_cb(ctx, password_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)pw);
    int ok = SSL_CTX_use_PrivateKey_file(ctx, v, SSL_FILETYPE_PEM) == 1;
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);   /* pw is the caller's */
    if (!ok) return config_fail(err, errlen, "opts.key: cannot use", v);
    return 0;
  }
  BIO *b = BIO_new_mem_buf(v, -1);
  EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, password_cb, (void *)pw) : NULL;
  int ok = k != NULL && SSL_CTX_use_PrivateKey(ctx, k) == 1;
  EVP_PKEY_free(k);
  BIO_free(b);
  if (!ok) return config_fail(err, errlen, "opts.key: cannot use the PEM text", NULL);
  return 0;
}

static int setup(qn_tls_ctx *c, const qn_tls_config *o, char *err, size_t errlen) {
  SSL_CTX *ctx = c->ssl_ctx;
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                           (o->ignore_unexpected_eof ? SSL_OP_IGNORE_UNEXPECTED_EOF : 0));
  if (!SSL_CTX_set_min_proto_version(ctx, o->min_version ? o->min_version : TLS1_2_VERSION) ||
      (o->max_version && !SSL_CTX_set_max_proto_version(ctx, o->max_version)))
    return config_fail(err, errlen, "opts.min_version/max_version: not usable", NULL);
  if (o->ciphers && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1)
    return config_fail(err, errlen, "opts.ciphers: no usable cipher in", o->ciphers);
  if (o->ciphersuites && SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1)
    return config_fail(err, errlen, "opts.ciphersuites: no usable suite in", o->ciphersuites);
  int r;
  if (o->certificate && (r = load_cert(ctx, o->certificate, err, errlen)) != 0) return r;
  if (o->key && (r = load_key(ctx, o->key, o->password, err, errlen)) != 0) return r;
  if (o->certificate && o->key && SSL_CTX_check_private_key(ctx) != 1)
    return config_fail(err, errlen, "opts.key does not match opts.certificate", NULL);
  if (o->server && (!o->certificate || !o->key)) {
    snprintf(err, errlen, "a server needs opts.certificate and opts.key");
    return QN_TLS_ECONFIG;
  }
  if (o->cafile || o->capath) {
    if (SSL_CTX_load_verify_locations(ctx, o->cafile, o->capath) != 1)
      return config_fail(err, errlen, "opts.cafile/capath: cannot load",
                         o->cafile ? o->cafile : o->capath);
  } else if (!o->server && o->verify && SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return config_fail(err, errlen, "the system trust store cannot be loaded", NULL);
  }
  if (o->server) {
    static const unsigned char sid[] = "quench";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);   /* resumption with client certs */
    if (o->verify) {
      if (o->cafile) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->cafile);
        if (names != NULL) SSL_CTX_set_client_CA_list(ctx, names);
      }
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    } else {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (o->alpn_len) {
      c->alpn = OPENSSL_malloc(o->alpn_len);
      if (c->alpn == NULL) return config_fail(err, errlen, "out of memory", NULL);
      memcpy(c->alpn, o->alpn, o->alpn_len);
      c->alpn_len = o->alpn_len;
      SSL_CTX_set_alpn_select_cb(ctx, alpn_select, c);
    }
  } else {
    SSL_CTX_set_verify(ctx, o->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    if (o->alpn_len && SSL_CTX_set_alpn_protos(ctx, o->alpn, (unsigned)o->alpn_len) != 0)
      return config_fail(err, errlen, "opts.alpn: not usable", NULL);
  }
  return 0;
}

int qn_tls_ctx_new(const qn_tls_config *o, qn_tls_ctx **out, char *err, size_t errlen) {
  *out = NULL;
  ERR_clear_error();
  qn_tls_ctx *c = OPENSSL_zalloc(sizeof *c);
  if (c == NULL) return UV_ENOMEM;
  c->refs = 1;
  c->server = o->server != 0;
  c->verify = o->verify != 0;
  c->ignore_eof = o->ignore_unexpected_eof != 0;
  c->ssl_ctx = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
  c->meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "quench stream");
  if (c->ssl_ctx == NULL || c->meth == NULL || !BIO_meth_set_write(c->meth, bio_write) ||
      !BIO_meth_set_read(c->meth, bio_read) || !BIO_meth_set_ctrl(c->meth, bio_ctrl) ||
      !BIO_meth_set_create(c->meth, bio_create)) {
    qn_tls_ctx_unref(c);
    ERR_clear_error();
    return UV_ENOMEM;
  }
  int r = setup(c, o, err, errlen);
  if (r != 0) {
    qn_tls_ctx_unref(c);
    return r;
  }
  *out = c;
  return 0;
}

void qn_tls_ctx_ref(qn_tls_ctx *c) { c->refs++; }

void qn_tls_ctx_unref(qn_tls_ctx *c) {
  if (c == NULL || --c->refs > 0) return;
  for (size_t i = 0; i < c->nsni; i++) {
    OPENSSL_free(c->sni[i].name);
    qn_tls_ctx_unref(c->sni[i].ctx);
  }
  OPENSSL_free(c->sni);
  SSL_CTX_free(c->ssl_ctx);
  BIO_meth_free(c->meth);
  OPENSSL_free(c->alpn);
  OPENSSL_free(c);
}

int qn_tls_ctx_is_server(const qn_tls_ctx *c) { return c->server; }

/* ---- certificates by SNI name ---- */

/* Exact names first, then the longest wildcard ("*.a.example" matches
   "b.a.example", not "a.example" nor "c.b.a.example"), as nginx's
   server_name does; NULL when none matches. */
static qn_tls_ctx *sni_lookup(const qn_tls_ctx *c, const char *name) {
  qn_tls_ctx *best = NULL;
  size_t best_len = 0;
  const char *dot = strchr(name, '.');
  for (size_t i = 0; i < c->nsni; i++) {
    const char *n = c->sni[i].name;
    if (OPENSSL_strcasecmp(n, name) == 0) return c->sni[i].ctx;
    if (n[0] == '*' && n[1] == '.' && dot != NULL && dot != name &&
        OPENSSL_strcasecmp(n + 1, dot) == 0 && strlen(n) > best_len) {
      best = c->sni[i].ctx;
      best_len = strlen(n);
    }
  }
  return best;
}

/* The client's SNI name picks the certificate: the SSL moves to that
   name's context (made from the same options, so ALPN, ciphers and
   client-certificate checking stay as they were). No name, or one not
   listed: the default certificate, as nginx's default server. */
static int sni_select(SSL *ssl, int *alert, void *arg) {
  (void)alert;
  const qn_tls_ctx *c = arg;
  const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  qn_tls_ctx *hit = name != NULL ? sni_lookup(c, name) : NULL;
  if (hit != NULL && SSL_set_SSL_CTX(ssl, hit->ssl_ctx) == NULL) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

int qn_tls_ctx_add_sni(qn_tls_ctx *c, const char *name, qn_tls_ctx *for_name) {
  if (!c->server || !for_name->server || for_name->nsni > 0 || name[0] == '\0') return UV_EINVAL;
  for (size_t i = 0; i < c->nsni; i++)
    if (OPENSSL_strcasecmp(c->sni[i].name, name) == 0) return UV_EEXIST;
  sni_entry *e = OPENSSL_realloc(c->sni, (c->nsni + 1) * sizeof *e);
  if (e == NULL) return UV_ENOMEM;
  c->sni = e;
  char *copy = OPENSSL_strdup(name);
  if (copy == NULL) return UV_ENOMEM;
  for (char *p = copy; *p; p++)
    if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
  e[c->nsni].name = copy;
  e[c->nsni].ctx = for_name;
  qn_tls_ctx_ref(for_name);
  if (c->nsni++ == 0) {
    SSL_CTX_set_tlsext_servername_callback(c->ssl_ctx, sni_select);
    SSL_CTX_set_tlsext_servername_arg(c->ssl_ctx, c);
  }
  return 0;
}

/* ---- output ---- */

/* Write the records made so far; the first failure is the stream's. What
   the socket does not take at once is queued in the output buffer itself,
   which the write request then owns (no copy); the next records go to a
   new one. */
static int flush(qn_stream *s) {
  qn__tls *t = s->tls;
  if (t->olen == 0) return 0;
  int taken;
  int r = qn__stream_raw_write_owned(s, t->obuf, t->ocap, t->olen, &taken);
  t->olen = 0;
  if (taken || t->ocap > OBUF_KEEP) {       /* given away, or grown by a large write */
    if (!taken) qn__free(s->rt, t->obuf);
    t->obuf = NULL;
    t->ocap = 0;
  }
  return r;
}

/* ---- the handshake and decryption ---- */

static void wake_all(qn_stream *s) {
  qn__stream_wake_readers(s);
  qn__wait_wake_all(&s->writers);           /* writable and handshake futures */
}

static void hs_fail(qn_stream *s, int code) {
  qn__tls *t = s->tls;
  t->hs = HS_FAILED;
  t->err = code;
  if (s->read_err == 0) s->read_err = code;
  qn__stream_stop_reading(s);
}

static void decrypt(qn_stream *s);

static void hs_step(qn_stream *s) {
  qn__tls *t = s->tls;
  ERR_clear_error();
  int r = SSL_do_handshake(t->ssl);
  int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
  int fr = flush(s);                        /* our flight, or the alert we send */
  if (r == 1) {
    t->hs = HS_DONE;
    if (fr != 0) hs_fail(s, fr);
    else decrypt(s);                        /* records that came with the last flight */
  } else if (t->oom) {
    ERR_clear_error();
    set_msg(t, "handshake failed", "out of memory");
    hs_fail(s, UV_ENOMEM);
  } else if (e == SSL_ERROR_WANT_READ) {
    if (fr != 0) {
      hs_fail(s, fr);
    } else if (t->raw_err != 0 && t->clen == t->coff) {
      set_msg(t, "handshake failed", t->raw_err == UV_EOF ? "the peer closed the connection"
                                                           : uv_strerror(t->raw_err));
      hs_fail(s, t->raw_err == UV_EOF ? QN_TLS_EHANDSHAKE : t->raw_err);
    }
  } else {
    hs_fail(s, classify(t, 1));
  }
  if (t->hs != HS_RUNNING) wake_all(s);
}

/* Decrypt into the plaintext buffer while the read limit leaves room. */
static void decrypt(qn_stream *s) {
  qn__tls *t = s->tls;
  size_t before = s->len;
  while (s->read_err == 0 && !s->closing && s->len < qn__stream_read_limit(s)) {
    int r = qn__stream_reserve(s, PLAIN_ROOM);
    if (r != 0) {
      s->read_err = r;
      break;
    }
    size_t got = 0, room = s->cap - s->off - s->len, avail = t->clen - t->coff;
    if (room > INT32_MAX) room = INT32_MAX;
    ERR_clear_error();
    if (SSL_read_ex(t->ssl, s->buf + s->off + s->len, room, &got) == 1) {
      s->len += got;
      continue;
    }
    int e = SSL_get_error(t->ssl, 0);
    if (t->oom) {
      s->read_err = UV_ENOMEM;
    } else if (e == SSL_ERROR_WANT_READ) {
      if (t->clen > t->coff && t->clen - t->coff < avail) continue;   /* a ticket: go on */
      if (t->raw_err != 0 && t->clen == t->coff) {   /* the socket ended, no close_notify */
        if (t->raw_err == UV_EOF && !t->ctx->ignore_eof) {
          set_msg(t, "the connection ended without close_notify (possibly truncated)", "");
          s->read_err = QN_TLS_ETRUNCATED;
        } else {
          s->read_err = t->raw_err;
        }
      }
      break;
    } else if (e == SSL_ERROR_ZERO_RETURN) {
      s->read_err = UV_EOF;                 /* close_notify */
    } else {
      s->read_err = classify(t, 0);
    }
    ERR_clear_error();
    break;
  }
  int fr = flush(s);                        /* tickets, KeyUpdate, alerts */
  if (fr != 0 && s->read_err == 0 && s->len == before) s->read_err = fr;
  if (s->read_err != 0 || t->clen > t->coff) qn__stream_stop_reading(s);
}

void qn__tls_alloc(qn_stream *s, uv_buf_t *b) {
  qn__tls *t = s->tls;
  if (t->cbuf == NULL) {
    t->cbuf = qn__malloc(s->rt, CBUF_SIZE);
    if (t->cbuf == NULL) {
      s->read_err = UV_ENOMEM;
      *b = uv_buf_init(NULL, 0);
      return;
    }
    t->ccap = CBUF_SIZE;
  }
  if (t->coff > 0) {                        /* keep the unread tail at the front */
    memmove(t->cbuf, t->cbuf + t->coff, t->clen - t->coff);
    t->clen -= t->coff;
    t->coff = 0;
  }
  *b = uv_buf_init(t->cbuf + t->clen, (unsigned)(t->ccap - t->clen));
}

void qn__tls_on_read(qn_stream *s, ssize_t n) {
  qn__tls *t = s->tls;
  if (n == 0) return;
  if (n > 0) {
    t->clen += (size_t)n;
  } else {
    if (t->raw_err == 0) t->raw_err = (int)n;
    qn__stream_stop_reading(s);
  }
  if (s->read_err == UV_ENOMEM && t->cbuf == NULL) {   /* qn__tls_alloc failed */
    qn__stream_stop_reading(s);
    if (t->hs == HS_RUNNING) {
      set_msg(t, "handshake failed", "out of memory");
      hs_fail(s, UV_ENOMEM);
      wake_all(s);
    }
    qn__stream_wake_readers(s);
    return;
  }
  if (t->hs == HS_RUNNING) hs_step(s);
  else if (t->hs == HS_DONE) decrypt(s);
  else if (t->hs == HS_IDLE && (t->clen >= t->ccap || t->raw_err)) qn__stream_stop_reading(s);
  qn__stream_wake_readers(s);
}

int qn__tls_can_read(const qn_stream *s) {
  const qn__tls *t = s->tls;
  return t->raw_err == 0 && t->hs != HS_FAILED && (t->cbuf == NULL || t->clen < t->ccap) &&
         !(t->hs == HS_DONE && t->clen > t->coff);   /* records wait for plaintext room */
}

void qn__tls_kick(qn_stream *s) {
  qn__tls *t = s->tls;
  if (t->hs != HS_IDLE || s->closing) return;
  t->hs = HS_RUNNING;
  hs_step(s);
}

int qn__tls_handshake_over(qn_stream *s) {
  qn__tls_kick(s);
  return s->tls->hs == HS_DONE || s->tls->hs == HS_FAILED;
}

void qn__tls_pump(qn_stream *s) {
  qn__tls *t = s->tls;
  if (t->hs != HS_DONE || s->closing || s->read_err != 0) return;
  if (t->clen == t->coff && SSL_has_pending(t->ssl) == 0 && t->raw_err == 0) return;
  size_t before = s->len;
  decrypt(s);
  if (s->len != before || s->read_err != 0) qn__stream_wake_readers(s);
}

int qn__tls_write(qn_stream *s, const char *data, size_t len) {
  qn__tls *t = s->tls;
  if (t->hs == HS_FAILED) return t->err;
  if (t->hs != HS_DONE) {
    qn__tls_kick(s);
    if (t->hs == HS_FAILED) return t->err;
    return UV_EAGAIN;                       /* the writable future waits for the handshake */
  }
  do {
    size_t k = len > WRITE_CHUNK ? WRITE_CHUNK : len, w = 0;
    /* room for the chunk's records at once: no growing copy by copy */
    if (k > RECORD_MAX && obuf_chunk(s) != 0) {
      s->write_err = UV_ENOMEM;
      return UV_ENOMEM;
    }
    ERR_clear_error();
    if (k > 0 && SSL_write_ex(t->ssl, data, k, &w) != 1) {
      int r = t->oom ? UV_ENOMEM : classify(t, 0);
      t->olen = 0;                          /* a record half made is never sent */
      s->write_err = r;                     /* earlier chunks may be gone: the stream is broken */
      return r;
    }
    int r = flush(s);
    if (r != 0) return r;
    data += k;
    len -= k;
  } while (len > 0);
  return 0;
}

void qn__tls_dropped(qn_stream *s) {
  qn__tls *t = s->tls;
  if (t->hs != HS_RUNNING || s->closing) return;
  set_msg(t, "handshake failed", "the handshake was cancelled (the stream is closed)");
  hs_fail(s, UV_ECANCELED);
  qn_stream_close(s);
}

static void send_close_notify(qn_stream *s) {
  qn__tls *t = s->tls;
  if (t->hs != HS_DONE || t->notify_sent || s->write_err != 0) return;
  t->notify_sent = 1;
  ERR_clear_error();
  SSL_shutdown(t->ssl);
  ERR_clear_error();
  if (t->oom) {                             /* the alert was not made: a FIN now would truncate */
    t->olen = 0;
    s->write_err = UV_ENOMEM;
    return;
  }
  flush(s);
}

int qn__tls_shutdown(qn_stream *s) {
  send_close_notify(s);
  return s->write_err;
}

void qn__tls_close(qn_stream *s) {
  if (!s->io.closing) send_close_notify(s);
}

void qn__tls_recycle(qn_stream *s, char *buf, size_t cap) {
  qn__tls *t = s->tls;
  if (cap == OBUF_KEEP && s->nwrites > 0 && t->nspares < SPARES_MAX) {   /* the burst goes on */
    memcpy(buf, &t->spares, sizeof t->spares);
    t->spares = buf;
    t->nspares++;
    return;
  }
  if (s->nwrites == 0) {    /* the queue is empty: an idle stream keeps one buffer */
    free_spares(s, t);
    if (t->obuf == NULL && cap <= OBUF_KEEP) {
      t->obuf = buf;
      t->ocap = cap;
      return;
    }
  }
  qn__free(s->rt, buf);
}

void qn__tls_free(qn_stream *s) {
  qn__tls *t = s->tls;
  s->tls = NULL;
  free_spares(s, t);
  SSL_free(t->ssl);                         /* and its BIO */
  qn_tls_ctx_unref(t->ctx);
  qn__free(s->rt, t->cbuf);
  qn__free(s->rt, t->obuf);
  qn__free(s->rt, t);
}

/* ---- attaching, and what the embedder asks ---- */

int qn_tls_attach(qn_stream *s, qn_tls_ctx *ctx, const char *servername, void *session) {
  if (s->h.handle.type != UV_TCP || s->tls != NULL) return UV_EINVAL;
  if (qn_stream_is_closed(s)) return UV_EBADF;
  qn__tls *t = qn__calloc(s->rt, 1, sizeof *t);
  if (t == NULL) return UV_ENOMEM;
  ERR_clear_error();
  BIO *bio = NULL;
  t->ssl = SSL_new(ctx->ssl_ctx);
  if (t->ssl != NULL) bio = BIO_new(ctx->meth);
  if (bio == NULL) goto nomem;
  BIO_set_data(bio, s);
  SSL_set_bio(t->ssl, bio, bio);            /* one reference, taken by the SSL */
  if (ctx->server) {
    SSL_set_accept_state(t->ssl);
  } else {
    SSL_set_connect_state(t->ssl);
    if (servername != NULL && servername[0] != '\0') {
      unsigned char ip[16];
      int is_ip = inet_pton(AF_INET, servername, ip) == 1 || inet_pton(AF_INET6, servername, ip) == 1;
      if (!is_ip && SSL_set_tlsext_host_name(t->ssl, servername) != 1) goto nomem;
      if (ctx->verify) {
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), servername)
                       : SSL_set1_host(t->ssl, servername);
        if (ok != 1) goto nomem;
      }
    }
    if (session != NULL && SSL_set_session(t->ssl, session) != 1) goto nomem;
  }
  /* what the stream read before TLS began is the peer's first ciphertext */
  if (s->len > 0) {
    t->ccap = s->len > CBUF_SIZE ? s->len : CBUF_SIZE;
    t->cbuf = qn__malloc(s->rt, t->ccap);
    if (t->cbuf == NULL) goto nomem;
    memcpy(t->cbuf, s->buf + s->off, s->len);
    t->clen = s->len;
    s->off = s->len = 0;
  }
  t->raw_err = s->read_err;
  s->read_err = 0;
  t->ctx = ctx;
  qn_tls_ctx_ref(ctx);
  s->tls = t;
  if (t->clen >= t->ccap && t->cbuf != NULL) qn__stream_stop_reading(s);
  return 0;
nomem:
  ERR_clear_error();
  SSL_free(t->ssl);
  qn__free(s->rt, t->cbuf);
  qn__free(s->rt, t);
  return UV_ENOMEM;
}

int qn_stream_is_tls(const qn_stream *s) { return s->tls != NULL; }

int qn_tls_handshake_state(const qn_stream *s) {
  if (s->tls == NULL) return UV_EINVAL;
  if (s->tls->hs == HS_DONE) return 1;
  return s->tls->hs == HS_FAILED ? s->tls->err : 0;
}

void *qn_tls_ssl(const qn_stream *s) { return s->tls ? s->tls->ssl : NULL; }

/* ---- the handshake future ---- */

typedef struct hs_future {
  qn_future base;
  qn_stream *s;
  qn__wait w;               /* on s->writers: woken when the handshake ends */
  int status;
} hs_future;

static int hs_poll(qn_future *f, qn_waker *wk) {
  hs_future *h = (hs_future *)f;
  qn_stream *s = h->s;
  int st = s->tls ? (qn__tls_kick(s), qn_tls_handshake_state(s)) : UV_ECANCELED;
  if (st == 0 && s->closing) st = UV_ECANCELED;
  if (st == 0) {
    qn__wait_link(&s->writers, &h->w, wk);
    return QN_PENDING;
  }
  qn__wait_unlink(&h->w);
  h->status = st == 1 ? 0 : st;
  return QN_READY;
}

static void hs_drop(qn_future *f) {
  hs_future *h = (hs_future *)f;
  qn_stream *s = h->s;
  qn__wait_unlink(&h->w);
  if (s->tls) qn__tls_dropped(s);
  qn__free(s->rt, h);
  qn__stream_unref(s);
}

static const qn_future_vt hs_vt = { hs_poll, hs_drop };

qn_future *qn_tls_handshake_new(qn_stream *s) {
  hs_future *h = qn__calloc(s->rt, 1, sizeof *h);
  if (h == NULL) return NULL;
  h->base.vt = &hs_vt;
  h->s = s;
  qn__wait_init(&h->w);
  qn__io_ref(&s->io);
  return &h->base;
}

int qn_tls_handshake_status(const qn_future *f) { return ((const hs_future *)f)->status; }
