/* The channel's order and its end, on futures polled by hand (no task):
   values leave in commit order whichever ready receiver is taken from,
   and a receiver is told "closed" only once nothing can come any more. */
#include <stdio.h>
#include <stdlib.h>
#include "quench.h"

static int failures;
#define CHECK(cond) \
  do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); failures++; } } while (0)

static int woken;
static void count_wake(qn_waker *w) { (void)w; woken++; }
static qn_waker waker = { count_wake };

static qn_chan *chan_new(size_t capacity) {
  qn_chan *ch = malloc(qn_chan_size());
  qn_chan_init(ch, capacity);
  return ch;
}

static void chan_free(qn_chan *ch) {
  qn_chan_fini(ch);
  free(ch);
}

static void send_now(qn_runtime *rt, qn_chan *ch, uint64_t v) {
  CHECK(qn_chan_reserve(ch) == QN_OK);
  CHECK(qn_chan_commit(rt, ch, v) == QN_OK);
}

/* Two receive futures wait; two values come; the second future is taken
   from first (a select whose winner is the later waiter), the first is
   dropped: the taker gets the older value, the newer one is queued. */
static void test_claims_keep_order(qn_runtime *rt) {
  qn_chan *ch = chan_new(SIZE_MAX);
  qn_future *a = qn_chan_recv_new(rt, ch), *b = qn_chan_recv_new(rt, ch);
  CHECK(qn_poll(a, &waker) == QN_PENDING);
  CHECK(qn_poll(b, &waker) == QN_PENDING);
  send_now(rt, ch, 1);
  send_now(rt, ch, 2);
  CHECK(qn_poll(b, &waker) == QN_READY);
  CHECK(qn_poll(a, &waker) == QN_READY);
  uint64_t v = 0;
  CHECK(qn_chan_recv_take(b, &v) == QN_OK && v == 1);
  qn_drop(a);                           /* its claim is given up: 2 is queued again */
  qn_drop(b);
  CHECK(qn_chan_len(ch) == 1);
  CHECK(qn_chan_try_recv(ch, &v) == QN_OK && v == 2);
  chan_free(ch);
}

/* try_recv while a receive future holds a claim takes the oldest value;
   the claim then gets the next one. */
static void test_try_recv_takes_oldest(qn_runtime *rt) {
  qn_chan *ch = chan_new(SIZE_MAX);
  qn_future *a = qn_chan_recv_new(rt, ch);
  CHECK(qn_poll(a, &waker) == QN_PENDING);
  send_now(rt, ch, 1);
  send_now(rt, ch, 2);
  uint64_t v = 0;
  CHECK(qn_chan_try_recv(ch, &v) == QN_OK && v == 1);
  CHECK(qn_chan_try_recv(ch, &v) == QN_EEMPTY);   /* 2 is claimed */
  CHECK(qn_poll(a, &waker) == QN_READY);
  CHECK(qn_chan_recv_take(a, &v) == QN_OK && v == 2);
  qn_drop(a);
  chan_free(ch);
}

/* The program: a full channel of capacity 1, a sender waiting for
   room, a receiver waiting; try_recv grants the sender, then close. The
   receiver must get the sender's value, then "closed". */
static void test_close_waits_for_granted_sender(qn_runtime *rt) {
  qn_chan *ch = chan_new(1);
  send_now(rt, ch, 1);
  qn_future *s = qn_chan_reserve_new(rt, ch);
  CHECK(qn_poll(s, &waker) == QN_PENDING);
  uint64_t v = 0;
  CHECK(qn_chan_try_recv(ch, &v) == QN_OK && v == 1);   /* grants s */
  qn_chan_close(ch);
  CHECK(!qn_chan_ended(ch));
  CHECK(qn_chan_try_recv(ch, &v) == QN_EEMPTY);         /* not "closed": 2 is coming */
  qn_future *r = qn_chan_recv_new(rt, ch);
  CHECK(qn_poll(r, &waker) == QN_PENDING);
  CHECK(qn_poll(s, &waker) == QN_READY);
  CHECK(qn_chan_reserve_commit(s, 2) == QN_OK);
  qn_drop(s);
  CHECK(qn_poll(r, &waker) == QN_READY);
  CHECK(qn_chan_recv_take(r, &v) == QN_OK && v == 2);
  qn_drop(r);
  CHECK(qn_chan_ended(ch));
  CHECK(qn_chan_try_recv(ch, &v) == QN_ECLOSED);
  chan_free(ch);
}

/* A sender granted before the close and dropped without committing: the
   waiting receiver is woken and told "closed". */
static void test_dropped_permit_ends_channel(qn_runtime *rt) {
  qn_chan *ch = chan_new(1);
  send_now(rt, ch, 1);
  qn_future *s = qn_chan_reserve_new(rt, ch);
  CHECK(qn_poll(s, &waker) == QN_PENDING);
  uint64_t v = 0;
  CHECK(qn_chan_try_recv(ch, &v) == QN_OK);
  qn_chan_close(ch);
  qn_future *r = qn_chan_recv_new(rt, ch);
  CHECK(qn_poll(r, &waker) == QN_PENDING);
  woken = 0;
  qn_drop(s);
  CHECK(woken == 1);
  CHECK(qn_poll(r, &waker) == QN_READY);
  CHECK(qn_chan_recv_take(r, &v) == QN_ECLOSED);
  qn_drop(r);
  chan_free(ch);
}

/* A sender still waiting for room when the channel closes gets no permit. */
static void test_waiting_sender_fails_on_close(qn_runtime *rt) {
  qn_chan *ch = chan_new(1);
  send_now(rt, ch, 1);
  qn_future *s = qn_chan_reserve_new(rt, ch);
  CHECK(qn_poll(s, &waker) == QN_PENDING);
  qn_chan_close(ch);
  CHECK(qn_poll(s, &waker) == QN_READY);
  CHECK(qn_chan_reserve_commit(s, 2) == QN_ECLOSED);
  qn_drop(s);
  uint64_t v = 0;
  CHECK(qn_chan_try_recv(ch, &v) == QN_OK && v == 1);
  CHECK(qn_chan_try_recv(ch, &v) == QN_ECLOSED);
  chan_free(ch);
}

/* A receiver holding a claim when the channel closes: another receiver
   waits (the claim may come back), and gets the value when it does. */
static void test_claim_given_back_after_close(qn_runtime *rt) {
  qn_chan *ch = chan_new(SIZE_MAX);
  qn_future *a = qn_chan_recv_new(rt, ch);
  CHECK(qn_poll(a, &waker) == QN_PENDING);
  send_now(rt, ch, 7);
  qn_chan_close(ch);
  qn_future *b = qn_chan_recv_new(rt, ch);
  CHECK(qn_poll(b, &waker) == QN_PENDING);
  qn_drop(a);                           /* never taken: 7 goes to b */
  CHECK(qn_poll(b, &waker) == QN_READY);
  uint64_t v = 0;
  CHECK(qn_chan_recv_take(b, &v) == QN_OK && v == 7);
  qn_drop(b);
  CHECK(qn_chan_try_recv(ch, &v) == QN_ECLOSED);
  chan_free(ch);
}

int main(void) {
  qn_runtime *rt = qn_runtime_new(QN_CLOCK_VIRTUAL, 1);
  test_claims_keep_order(rt);
  test_try_recv_takes_oldest(rt);
  test_close_waits_for_granted_sender(rt);
  test_dropped_permit_ends_channel(rt);
  test_waiting_sender_fails_on_close(rt);
  test_claim_given_back_after_close(rt);
  qn_runtime_free(rt);
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  puts("chan_test: ok");
  return 0;
}
