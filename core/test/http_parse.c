/* core/http.c on its own: the head parser's framing rules, the head scan's
   limits, the chunked decoder and trailers (no runtime, no Lua). */
#include <stdio.h>
#include <string.h>
#include "quench.h"

static int failures;
#define CHECK(cond) \
  do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); failures++; } } while (0)

static qn_http_field fields[QN_HTTP_FIELDS_MAX];

static int parse(const char *s, qn_http_head *h) {
  return qn_http_parse_request(s, strlen(s), h, fields, 100);
}

static void test_good(void) {
  qn_http_head h;
  const char *s = "POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  "Connection: keep-alive, Upgrade\r\nExpect: 100-Continue\r\n\r\nhello";
  CHECK(parse(s, &h) == 0);
  CHECK(h.len == strlen(s) - 5);
  CHECK(h.method_len == 4 && memcmp(s + h.method_off, "POST", 4) == 0);
  CHECK(h.target_len == 6 && memcmp(s + h.target_off, "/a?b=1", 6) == 0);
  CHECK(h.minor == 1 && h.content_length == 5 && h.nfields == 4);
  CHECK(h.flags == (QN_HTTP_KEEP_ALIVE | QN_HTTP_UPGRADE | QN_HTTP_EXPECT_CONTINUE));
  CHECK(fields[1].name_len == 14 && memcmp(s + fields[1].value_off, "5", 1) == 0);
  CHECK(parse("GET / HTTP/1.0\r\n\r\n", &h) == 0 && h.minor == 0 && h.content_length == -1);
  CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n", &h) == 0);
  CHECK(h.flags & QN_HTTP_CHUNKED);
  CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", &h) == 0);
  CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &h) == 0);
  CHECK(h.flags & QN_HTTP_CLOSE);
}

static void test_bad(void) {
  qn_http_head h;
  const char *bad[] = {
    "GET /\r\n\r\n", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", "GET / HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nX: 1\r\n 2\r\n\r\n",
    "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1234567890123456789\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    "G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int r = parse(bad[i], &h);
    if (r != QN_HTTP_E_BAD) fprintf(stderr, "case %zu: %d\n", i, r);
    CHECK(r == QN_HTTP_E_BAD);
  }
  CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", &h) ==
        QN_HTTP_E_NOT_IMPLEMENTED);
  CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\n", &h) == QN_HTTP_E_PARTIAL);
  char many[4096] = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 150; i++) strcat(many, "X: 1\r\n");
  strcat(many, "\r\n");
  CHECK(parse(many, &h) == QN_HTTP_E_TOO_MANY_FIELDS);
}

static void test_scan(void) {
  size_t end;
  const char *s = "GET / HTTP/1.1\r\nHost: x\r\n\r\nrest";
  CHECK(qn_http_head_scan(s, strlen(s), 0, 100, 1000, &end) == 0 && end == strlen(s) - 4);
  CHECK(qn_http_head_scan(s, 20, 0, 100, 1000, &end) == QN_HTTP_E_PARTIAL);
  CHECK(qn_http_head_scan(s, 20, 0, 10, 1000, &end) == QN_HTTP_E_URI_TOO_LONG);
  CHECK(qn_http_head_scan(s, 20, 0, 100, 18, &end) == QN_HTTP_E_HEAD_TOO_LARGE);
  CHECK(qn_http_head_scan(s, strlen(s), 0, 100, 20, &end) == QN_HTTP_E_HEAD_TOO_LARGE);
  const char *lf = "\r\nGET / HTTP/1.1\nHost: x\n\n";   /* a leading blank line, bare LFs */
  CHECK(qn_http_head_scan(lf, strlen(lf), 0, 100, 1000, &end) == 0 && end == strlen(lf));
  /* an incremental scan finds the end across the pieces it was given */
  CHECK(qn_http_head_scan(s, 26, 0, 100, 1000, &end) == QN_HTTP_E_PARTIAL);
  CHECK(qn_http_head_scan(s, 28, 26, 100, 1000, &end) == 0 && end == 27);
}

static void test_chunked(void) {
  qn_http_chunked d;
  qn_http_chunked_init(&d);
  char b1[] = "5;ext=1\r\nhel";
  size_t len = strlen(b1), left = 0;
  CHECK(qn_http_chunked_decode(&d, b1, &len, &left) == QN_HTTP_E_PARTIAL);
  CHECK(len == 3 && memcmp(b1, "hel", 3) == 0);
  char b2[] = "lo\r\n0\r\nX-Sum: 1\r\n\r\nNEXT";
  len = strlen(b2);
  CHECK(qn_http_chunked_decode(&d, b2, &len, &left) == 0);
  CHECK(len == 2 && memcmp(b2, "lo", 2) == 0);
  /* what follows the body (the trailers, the next request) is moved to
     just after the decoded bytes; a caller that decoded a copy consumes
     (input - left) bytes of its own buffer */
  const char *tail = b2 + len;
  CHECK(strncmp(tail, "X-Sum: 1\r\n\r\nNEXT", left) == 0);
  size_t n, used;
  CHECK(qn_http_parse_trailers(tail, left, fields, 10, &n, &used) == 0);
  CHECK(n == 1 && used == left - 4);
  qn_http_chunked_init(&d);
  char bad[] = "zz\r\nab\r\n";
  len = strlen(bad);
  CHECK(qn_http_chunked_decode(&d, bad, &len, &left) == QN_HTTP_E_BAD);
}

int main(void) {
  test_good();
  test_bad();
  test_scan();
  test_chunked();
  if (failures) fprintf(stderr, "%d failure(s)\n", failures);
  return failures ? 1 : 0;
}
