/*
** HTTP/1.x messages over a stream: the request head parser and the chunked
** body decoder (picohttpparser, as Debian ships it inside libh2o), the
** framing rules of RFC 9112 on top of it, and two futures over a stream:
** "a whole head is buffered" and "the peer went away".
**
** Debian 12 ships picohttpparser compiled into libh2o.so.0.13 (the phr_*
** symbols are exported) but no header for it, so its four declarations are
** repeated here, as upstream's picohttpparser.h of that version has them.
** The chunked decoder's struct is the one thing whose layout we repeat; it
** is embedded in a larger zeroed union (qn_http_chunked), so a library
** version with more private fields at its end would still write inside
** memory we own.
**
** Nothing here copies a byte: a parsed head is offsets into the buffer it
** was parsed from; the embedder copies what it keeps.
*/
#include <string.h>
#include <sys/types.h>
#include "internal.h"

struct phr_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);
int phr_parse_headers(const char *buf, size_t len, struct phr_header *headers,
                      size_t *num_headers, size_t last_len);
struct phr_chunked_decoder {
  size_t bytes_left_in_chunk;
  char consume_trailer;
  char _hex_count;
  char _state;
};
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

_Static_assert(sizeof(struct phr_chunked_decoder) <= sizeof(qn_http_chunked),
               "qn_http_chunked must hold picohttpparser's decoder");

/* ---- heads ---- */

static int lower_eq(const char *a, size_t alen, const char *lit) {
  size_t n = strlen(lit);
  if (alen != n) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
    if (c != lit[i]) return 0;
  }
  return 1;
}

static void trim(const char **p, size_t *n) {
  while (*n > 0 && (**p == ' ' || **p == '\t')) { (*p)++; (*n)--; }
  while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t')) (*n)--;
}

/* Connection: a comma-separated list of tokens. */
static void connection_tokens(qn_http_head *h, const char *v, size_t n) {
  while (n > 0) {
    const char *comma = memchr(v, ',', n);
    size_t k = comma ? (size_t)(comma - v) : n;
    const char *t = v;
    size_t tn = k;
    trim(&t, &tn);
    if (lower_eq(t, tn, "close")) h->flags |= QN_HTTP_CLOSE;
    else if (lower_eq(t, tn, "keep-alive")) h->flags |= QN_HTTP_KEEP_ALIVE;
    else if (lower_eq(t, tn, "upgrade")) h->flags |= QN_HTTP_UPGRADE;
    if (comma == NULL) break;
    v += k + 1;
    n -= k + 1;
  }
}

/* A Content-Length value: digits only, no overflow. */
static int parse_length(const char *v, size_t n, int64_t *out) {
  trim(&v, &n);
  if (n == 0 || n > 18) return -1;
  int64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') return -1;
    x = x * 10 + (v[i] - '0');
  }
  *out = x;
  return 0;
}

/* Why phr_parse_request failed: too many fields (431) or malformed (400). */
static int classify_failure(const char *buf, size_t len, size_t max_fields) {
  size_t lines = 0;
  for (size_t i = 0; i < len; i++) {
    if (buf[i] != '\n') continue;
    if (i + 1 < len && buf[i + 1] == '\n') break;
    if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') break;
    lines++;
  }
  return lines > max_fields ? QN_HTTP_E_TOO_MANY_FIELDS : QN_HTTP_E_BAD;
}

int qn_http_parse_request(const char *buf, size_t len, qn_http_head *h, qn_http_field *fields,
                          size_t max_fields) {
  const char *method, *path;
  size_t method_len, path_len, n = max_fields;
  int minor;
  struct phr_header hdr[QN_HTTP_FIELDS_MAX];
  if (n > QN_HTTP_FIELDS_MAX) n = QN_HTTP_FIELDS_MAX;
  int r = phr_parse_request(buf, len, &method, &method_len, &path, &path_len, &minor, hdr, &n, 0);
  if (r == -2) return QN_HTTP_E_PARTIAL;
  if (r < 0) return classify_failure(buf, len, max_fields);
  memset(h, 0, sizeof *h);
  h->len = (size_t)r;
  h->method_off = (uint32_t)(method - buf);
  h->method_len = (uint32_t)method_len;
  h->target_off = (uint32_t)(path - buf);
  h->target_len = (uint32_t)path_len;
  h->minor = minor;
  h->content_length = -1;
  h->nfields = n;
  if (path_len == 0 || method_len == 0 || (minor != 0 && minor != 1)) return QN_HTTP_E_BAD;
  int hosts = 0, te = 0;
  for (size_t i = 0; i < n; i++) {
    if (hdr[i].name == NULL) return QN_HTTP_E_BAD;   /* obs-fold: RFC 9112 5.2 allows a 400 */
    if (hdr[i].name_len == 0) return QN_HTTP_E_BAD;
    fields[i].name_off = (uint32_t)(hdr[i].name - buf);
    fields[i].name_len = (uint32_t)hdr[i].name_len;
    fields[i].value_off = (uint32_t)(hdr[i].value - buf);
    fields[i].value_len = (uint32_t)hdr[i].value_len;
    const char *name = hdr[i].name, *v = hdr[i].value;
    size_t nl = hdr[i].name_len, vl = hdr[i].value_len;
    switch (name[0] | 0x20) {
    case 'c':
      if (lower_eq(name, nl, "content-length")) {
        int64_t cl;
        if (parse_length(v, vl, &cl) != 0) return QN_HTTP_E_BAD;
        if (h->content_length >= 0 && h->content_length != cl) return QN_HTTP_E_BAD;
        h->content_length = cl;
      } else if (lower_eq(name, nl, "connection")) {
        connection_tokens(h, v, vl);
      }
      break;
    case 'e':
      if (lower_eq(name, nl, "expect")) {
        trim(&v, &vl);
        if (lower_eq(v, vl, "100-continue")) h->flags |= QN_HTTP_EXPECT_CONTINUE;
      }
      break;
    case 'h':
      if (lower_eq(name, nl, "host")) hosts++;
      break;
    case 't':
      if (lower_eq(name, nl, "transfer-encoding")) {
        trim(&v, &vl);
        if (te++ > 0) return QN_HTTP_E_BAD;
        if (!lower_eq(v, vl, "chunked")) return QN_HTTP_E_NOT_IMPLEMENTED;
        h->flags |= QN_HTTP_CHUNKED;
      }
      break;
    default:
      break;
    }
  }
  /* RFC 9112: a request with both is a smuggling attempt or a broken
     proxy; HTTP/1.0 has no chunked coding; 1.1 needs exactly one Host */
  if (te && h->content_length >= 0) return QN_HTTP_E_BAD;
  if (te && minor == 0) return QN_HTTP_E_BAD;
  if (hosts > 1 || (minor == 1 && hosts == 0)) return QN_HTTP_E_BAD;
  return 0;
}

int qn_http_parse_trailers(const char *buf, size_t len, qn_http_field *fields,
                           size_t max_fields, size_t *nfields, size_t *used) {
  struct phr_header hdr[QN_HTTP_FIELDS_MAX];
  size_t n = max_fields > QN_HTTP_FIELDS_MAX ? QN_HTTP_FIELDS_MAX : max_fields;
  int r = phr_parse_headers(buf, len, hdr, &n, 0);
  if (r == -2) return QN_HTTP_E_PARTIAL;
  if (r < 0) return classify_failure(buf, len, max_fields);
  for (size_t i = 0; i < n; i++) {
    if (hdr[i].name == NULL || hdr[i].name_len == 0) return QN_HTTP_E_BAD;
    fields[i].name_off = (uint32_t)(hdr[i].name - buf);
    fields[i].name_len = (uint32_t)hdr[i].name_len;
    fields[i].value_off = (uint32_t)(hdr[i].value - buf);
    fields[i].value_len = (uint32_t)hdr[i].value_len;
  }
  *nfields = n;
  *used = (size_t)r;
  return 0;
}

/* ---- chunked bodies ---- */

void qn_http_chunked_init(qn_http_chunked *d) {
  memset(d, 0, sizeof *d);
  /* trailers are left to qn_http_parse_trailers, so the embedder sees them */
  ((struct phr_chunked_decoder *)d)->consume_trailer = 0;
}

int qn_http_chunked_decode(qn_http_chunked *d, char *buf, size_t *len, size_t *left) {
  size_t n = *len;
  ssize_t r = phr_decode_chunked((struct phr_chunked_decoder *)d, buf, &n);
  *len = n;
  if (r == -1) return QN_HTTP_E_BAD;
  if (r == -2) return QN_HTTP_E_PARTIAL;
  *left = (size_t)r;
  return 0;
}

/* ---- where a head ends ---- */

/* The end of the head in buf[0..len): the offset just past its empty line,
   or 0. Lines end in "\n" or "\r\n" (picohttpparser takes both). `from` is
   where the previous scan stopped, so a slow client costs linear time. */
static size_t head_end(const char *buf, size_t len, size_t from) {
  size_t i = from > 2 ? from - 2 : 0;
  while (i < len) {
    const char *nl = memchr(buf + i, '\n', len - i);
    if (nl == NULL) return 0;
    size_t k = (size_t)(nl - buf) + 1;
    if (k < len && buf[k] == '\n') return k + 1;
    if (k + 1 < len && buf[k] == '\r' && buf[k + 1] == '\n') return k + 2;
    i = k;
  }
  return 0;
}

int qn_http_head_scan(const char *buf, size_t len, size_t from, size_t max_line,
                      size_t max_head, size_t *end) {
  *end = 0;
  /* a blank line before the request line is allowed (RFC 9112 2.2) */
  size_t skip = 0;
  while (skip < len && skip < 8 && (buf[skip] == '\r' || buf[skip] == '\n')) skip++;
  const char *nl = memchr(buf + skip, '\n', len - skip);
  if (nl == NULL) {
    if (len - skip > max_line) return QN_HTTP_E_URI_TOO_LONG;
    return QN_HTTP_E_PARTIAL;
  }
  if ((size_t)(nl - buf) - skip > max_line) return QN_HTTP_E_URI_TOO_LONG;
  size_t e = head_end(buf + skip, len - skip, from > skip ? from - skip : 0);
  if (e == 0) return len > max_head ? QN_HTTP_E_HEAD_TOO_LARGE : QN_HTTP_E_PARTIAL;
  if (skip + e > max_head) return QN_HTTP_E_HEAD_TOO_LARGE;
  *end = skip + e;
  return 0;
}

/* ---- futures over a stream ---- */

/* Both wait for "more bytes than now, or the end": a read of exactly
   buffered + 1 bytes, made again each time it is ready. */
typedef struct more_future {
  qn_future base;
  qn_stream *s;
  qn_future *read;          /* the inner read, or NULL */
  qn_future *sleep;         /* head: the deadline's timer, made when first needed */
  uint64_t deadline;        /* head: 0 for none */
  size_t want;              /* the inner read's count */
  size_t scanned;           /* head: bytes already scanned */
  size_t end;               /* head: the whole head's length, once found (result 0) */
  size_t max_line, max_head;  /* head: limits; gone: max_head is the cap */
  int gone;                 /* 1: the peer-gone future */
  int result;               /* what it found: 0 or a QN_HTTP_E_* or uv code */
  int idle;                 /* gone: stopped watching (cap reached) */
} more_future;

/* Whether the head future is done: a whole head, a limit, the end. */
static int head_ready(more_future *m) {
  const char *d;
  size_t len, used, end;
  int r = qn_stream_peek(m->s, QN_STREAM_SOME, 0, &d, &len, &used);
  if (r == UV_EAGAIN) return 0;
  if (r != 0) {
    m->result = r;
    return 1;
  }
  r = qn_http_head_scan(d, len, m->scanned, m->max_line, m->max_head, &end);
  m->scanned = len;
  if (r == 0) m->end = end;
  if (r == QN_HTTP_E_PARTIAL) {
    /* bytes buffered but no whole head: at the end of the stream they
       never will be */
    const char *d2;
    size_t l2, u2;
    int e = qn_stream_peek(m->s, QN_STREAM_ALL, 0, &d2, &l2, &u2);
    if (e == 0) {
      m->result = QN_HTTP_E_PARTIAL;          /* EOF inside a head */
      return 1;
    }
    if (e != UV_EAGAIN) {
      m->result = e;
      return 1;
    }
    return 0;
  }
  m->result = r;
  return 1;
}

/* Whether the peer went away: EOF or an error, seen through what is
   buffered (unread bytes do not hide it). */
static int gone_ready(more_future *m) {
  const char *d;
  size_t len, used;
  int r = qn_stream_peek(m->s, QN_STREAM_ALL, 0, &d, &len, &used);
  if (r == UV_EAGAIN) return 0;
  m->result = r == 0 ? UV_EOF : r;
  return 1;
}

static int more_poll(qn_future *f, qn_waker *wk) {
  more_future *m = (more_future *)f;
  for (;;) {
    if (m->idle) return QN_PENDING;
    if (m->gone ? gone_ready(m) : head_ready(m)) return QN_READY;
    size_t want = qn_stream_buffered(m->s) + 1;
    if (m->gone && want > m->max_head) {
      /* the peer keeps sending (a pipelined flood): stop watching rather
         than buffer without bound; the handler's own reads still see EOF */
      if (m->read) qn_drop(m->read);
      m->read = NULL;
      m->idle = 1;
      return QN_PENDING;
    }
    if (m->read != NULL && m->want != want) {
      qn_drop(m->read);
      m->read = NULL;
    }
    if (m->deadline != 0) {
      if (m->sleep == NULL && (m->sleep = qn_sleep_new(m->s->rt, m->deadline)) == NULL) {
        m->result = UV_ENOMEM;
        return QN_READY;
      }
      if (qn_poll(m->sleep, wk) == QN_READY) {
        m->result = UV_ETIMEDOUT;
        return QN_READY;
      }
    }
    if (m->read == NULL) {
      m->read = qn_stream_read_new(m->s, QN_STREAM_EXACT, want);
      if (m->read == NULL) {
        m->result = UV_ENOMEM;
        return QN_READY;
      }
      m->want = want;
    }
    if (qn_poll(m->read, wk) == QN_PENDING) return QN_PENDING;
    qn_drop(m->read);
    m->read = NULL;
  }
}

static void more_drop(qn_future *f) {
  more_future *m = (more_future *)f;
  if (m->read) qn_drop(m->read);
  if (m->sleep) qn_drop(m->sleep);
  qn_stream *s = m->s;
  qn__small_free(s->rt, m, sizeof *m);
  qn__stream_unref(s);
}

static const qn_future_vt more_vt = { more_poll, more_drop };

static qn_future *more_new(qn_stream *s, int gone, size_t max_line, size_t max_head) {
  more_future *m = qn__small_alloc(s->rt, sizeof *m);   /* one per connection: reused */
  if (m == NULL) return NULL;
  memset(m, 0, sizeof *m);
  m->base.vt = &more_vt;
  m->s = s;
  m->gone = gone;
  m->max_line = max_line;
  m->max_head = max_head;
  qn__stream_ref(s);
  return &m->base;
}

qn_future *qn_http_head_new(qn_stream *s, size_t max_line, size_t max_head, uint64_t deadline) {
  qn_future *f = more_new(s, 0, max_line, max_head);
  if (f != NULL) ((more_future *)f)->deadline = deadline;
  return f;
}

int qn_http_head_result(const qn_future *f) { return ((const more_future *)f)->result; }
size_t qn_http_head_end(const qn_future *f) { return ((const more_future *)f)->end; }

/* A server keeps one of these per connection for its whole life, a head
   watch between requests and a gone watch while one is handled, switched
   in place: no allocation per request, and the inner read, when it wants
   the same count, is kept. */
static void more_rearm(more_future *m, int gone, size_t max_line, size_t max_head,
                       uint64_t deadline) {
  if (m->sleep != NULL && m->deadline != deadline) {
    qn_drop(m->sleep);
    m->sleep = NULL;
  }
  m->gone = gone;
  m->deadline = deadline;
  m->max_line = max_line;
  m->max_head = max_head;
  m->scanned = 0;
  m->end = 0;
  m->result = 0;
  m->idle = 0;
}

void qn_http_watch_head(qn_future *f, size_t max_line, size_t max_head, uint64_t deadline) {
  more_rearm((more_future *)f, 0, max_line, max_head, deadline);
}

void qn_http_watch_gone(qn_future *f, size_t cap) { more_rearm((more_future *)f, 1, 0, cap, 0); }

qn_future *qn_http_gone_new(qn_stream *s, size_t cap) { return more_new(s, 1, 0, cap); }
