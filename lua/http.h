/*
** What the HTTP server's two binding files share: the request head
** (http.c) and the lot of connections that takes heads (http_lot.c).
*/
#ifndef QUENCH_HTTP_H
#define QUENCH_HTTP_H

#include <time.h>
#include "stream.h"

/* A request head: a copy of its bytes and the offsets of its fields; a
   Lua string is made only for what is asked for. */
typedef struct lq_head {
  const void *tag;          /* &lq_http_head_tag */
  qn_http_head h;
  int64_t left;             /* Content-Length body: bytes still to read */
  int64_t taken;            /* body bytes returned so far */
  int64_t max_body;         /* over this: EMSGSIZE */
  size_t max_fields;
  qn_http_chunked *dec;     /* a chunked body's decoder, after the struct; NULL otherwise */
  int phase;
  uint8_t continue_due;     /* Expect: 100-continue on a request with a body */
  qn_http_field *fields;    /* h.nfields of them, after the struct */
  char *bytes;              /* h.len bytes, after the fields */
} lq_head;

/* The head's tag (its first word, for lq_toudata) and, as a light
   userdata, the registry key of its metatable: no look-up by name on the
   per-request path. */
extern const char lq_http_head_tag;

/* The server's state in the tables of a request, its response and its
   connection: array slots, the indexes lua/quench/http.lua names the same
   (REQ_HEAD...), which must agree with these. */
enum { REQ_HEAD = 1, REQ_RES = 2, REQ_DRAIN = 3, REQ_SLOTS = 3 };
enum { RES_HS = 1, RES_CONN = 2, RES_SLOTS = 9 };
enum { CONN_TASK = 1 };

/* The core stream of a TCP, TLS, Unix or pipe stream at idx, open, or raise. */
qn_stream *lq_http_check_stream(lua_State *L, int idx, const char *fname);

/* A head wait's limits, packed into one word, and two of them back. */
uint64_t lq_http_pack_limits(size_t max_line, size_t max_head, size_t max_fields);
size_t lq_http_lim_head(uint64_t ns);
size_t lq_http_lim_line(uint64_t ns);

/* Parse what the stream holds: push a head (its metatable from user value
   2 of the userdata at lot_idx) and its framing, consuming its bytes;
   false, status, msg; or nil, msg, code. -1 (nothing pushed) if it must
   wait. Returns the number of values pushed. known_end: the head's length
   if a watch found it (qn_http_head_end; the scan is not done again), or 0. */
int lq_http_take_head(lua_State *L, qn_stream *s, uint64_t ns, int64_t max_body, int lot_idx,
                      size_t known_end);

/* The Date field's value, made at most once a second: a cache of its
   owner's (the _send_head closure's, a lot's), not a global. */
typedef struct lq_http_date {
  time_t sec;
  char text[40];
  size_t len;
} lq_http_date;

/* A response head to send, with the first piece of its body. */
typedef struct lq_http_head_out {
  const char *status_line;  /* "HTTP/1.1 200 OK\r\nDate: " */
  size_t status_len;
  const char *date;         /* NULL: now, from the cache */
  size_t date_len;
  const char *fields;       /* "Name: value\r\n"..., or NULL */
  size_t fields_len;
  int64_t length;           /* >= 0: Content-Length; -1: chunked; -2: neither */
  int conn;                 /* 1: Connection: close; 2: keep-alive; 0: none */
  const char *first;        /* the first piece of body, or NULL */
  size_t first_len;
  int chunked;              /* first goes as a chunk */
} lq_http_head_out;

/* Write the head and its first piece with one write, never waiting: push
   true; false and the whole bytes when the stream's queue is full (the
   caller waits with stream:write); or nil, msg, code. Returns the count.
   A head too long for the C stack is assembled in a buffer pushed on L. */
int lq_http_send_head(lua_State *L, qn_stream *s, lq_http_date *d, const lq_http_head_out *o);

#endif
