// udp-rr.c - bounded UDP round-trip load for `npm run bench` (loopback only).
//
// FLOWS client sockets, each connect()ed to HOST:PORT (so each is one client address:port, one
// proxy session). Each flow keeps WINDOW datagrams of SIZE bytes in flight: every echo that comes
// back is checked (header and fill pattern) and answered with the next datagram. A flow that hears
// nothing for 200 ms has lost its window (UDP may drop): it is refilled, and that is counted.
// WARMUP seconds are run and discarded, then SECONDS are measured; then it exits, whatever happens.
//
// usage: udp-rr HOST PORT [FLOWS=4] [WINDOW=16] [SECONDS=10] [SIZE=64] [WARMUP=1]
// prints one JSON line:
//   {"rtps":..., "sent":..., "received":..., "refills":..., "send_errors":..., "corrupt":...,
//    "p50_us":..., "p99_us":..., "seconds":...}
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x6b757072u /* "kupr" */
#define SILENT_NS 200000000ull
#define LAT_BUCKETS 250000 /* 1 us each: 0 .. 250 ms, the last one catches the rest */

struct head {
  uint32_t magic;
  uint32_t flow;
  uint64_t seq;
  uint64_t sent_ns;
};

struct flow {
  int fd;
  uint64_t next_seq;
  uint64_t heard_ns; /* last echo, or last refill */
};

static uint32_t latency[LAT_BUCKETS];

static uint64_t clock_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static unsigned char fill_byte(uint64_t seq, int i) { return (unsigned char)((seq * 131u + (unsigned)i) & 0xff); }

static int size; /* datagram size */
static uint64_t sent, received, refills, send_errors, corrupt;
static int measuring;

static void send_one(struct flow *f, int index) {
  unsigned char buf[1500];
  struct head h = {MAGIC, (uint32_t)index, f->next_seq, clock_ns()};
  memcpy(buf, &h, sizeof h);
  for (int i = (int)sizeof h; i < size; i++) buf[i] = fill_byte(h.seq, i);
  f->next_seq++;
  if (send(f->fd, buf, (size_t)size, 0) == size) {
    if (measuring) sent++;
  } else if (measuring) {
    send_errors++;
  }
}

static int check(const unsigned char *buf, ssize_t n, int index, uint64_t *sent_ns) {
  struct head h;
  if (n != size) return 0;
  memcpy(&h, buf, sizeof h);
  if (h.magic != MAGIC || h.flow != (uint32_t)index) return 0;
  for (int i = (int)sizeof h; i < size; i++)
    if (buf[i] != fill_byte(h.seq, i)) return 0;
  *sent_ns = h.sent_ns;
  return 1;
}

static uint64_t percentile(uint64_t total, double p) {
  if (total == 0) return 0;
  uint64_t want = (uint64_t)(p * (double)total), seen = 0;
  if (want == 0) want = 1;
  for (int b = 0; b < LAT_BUCKETS; b++) {
    seen += latency[b];
    if (seen >= want) return (uint64_t)b;
  }
  return LAT_BUCKETS - 1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s HOST PORT [FLOWS=4] [WINDOW=16] [SECONDS=10] [SIZE=64] [WARMUP=1]\n", argv[0]);
    return 2;
  }
  int flows = argc > 3 ? atoi(argv[3]) : 4;
  int window = argc > 4 ? atoi(argv[4]) : 16;
  double seconds = argc > 5 ? atof(argv[5]) : 10;
  size = argc > 6 ? atoi(argv[6]) : 64;
  double warmup = argc > 7 ? atof(argv[7]) : 1;
  if (flows < 1 || flows > 1024 || window < 1 || window > 4096 || seconds <= 0 || seconds > 600 || warmup < 0 || warmup > 60) {
    fprintf(stderr, "udp-rr: arguments out of range\n");
    return 2;
  }
  if (size < (int)sizeof(struct head)) size = (int)sizeof(struct head);
  if (size > 1472) size = 1472;

  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
    fprintf(stderr, "udp-rr: bad address %s\n", argv[1]);
    return 2;
  }

  int ep = epoll_create1(0);
  struct flow *f = calloc((size_t)flows, sizeof *f);
  uint64_t start = clock_ns();
  uint64_t measure_from = start + (uint64_t)(warmup * 1e9);
  uint64_t stop_at = measure_from + (uint64_t)(seconds * 1e9);
  measuring = warmup == 0;

  for (int i = 0; i < flows; i++) {
    f[i].fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (f[i].fd < 0 || connect(f[i].fd, (struct sockaddr *)&to, sizeof to) != 0) {
      perror("udp-rr: socket/connect");
      return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, f[i].fd, &ev);
    f[i].heard_ns = start;
    for (int k = 0; k < window; k++) send_one(&f[i], i);
  }

  struct epoll_event ready[64];
  unsigned char buf[2048];
  for (;;) {
    uint64_t now = clock_ns();
    if (now >= stop_at) break;
    if (!measuring && now >= measure_from) {
      measuring = 1;
      sent = received = refills = send_errors = corrupt = 0;
      memset(latency, 0, sizeof latency);
    }
    int n = epoll_wait(ep, ready, 64, 10);
    for (int e = 0; e < n; e++) {
      int i = (int)ready[e].data.u32;
      for (;;) {
        ssize_t got = recv(f[i].fd, buf, sizeof buf, 0);
        if (got < 0) break; /* EAGAIN, or ECONNREFUSED from an ICMP error: the silence check refills */
        uint64_t t = clock_ns(), sent_ns = 0;
        f[i].heard_ns = t;
        if (!check(buf, got, i, &sent_ns)) {
          if (measuring) corrupt++;
        } else if (measuring) {
          uint64_t us = (t - sent_ns) / 1000;
          latency[us < LAT_BUCKETS ? us : LAT_BUCKETS - 1]++;
          received++;
        }
        send_one(&f[i], i);
      }
    }
    now = clock_ns();
    for (int i = 0; i < flows; i++) {
      if (now - f[i].heard_ns < SILENT_NS) continue;
      if (measuring) refills++;
      f[i].heard_ns = now;
      for (int k = 0; k < window; k++) send_one(&f[i], i);
    }
  }
  double measured = (double)(clock_ns() - measure_from) / 1e9;
  printf("{\"rtps\":%.0f,\"sent\":%llu,\"received\":%llu,\"refills\":%llu,\"send_errors\":%llu,\"corrupt\":%llu,"
         "\"p50_us\":%llu,\"p99_us\":%llu,\"seconds\":%.3f}\n",
         measured > 0 ? (double)received / measured : 0, (unsigned long long)sent, (unsigned long long)received,
         (unsigned long long)refills, (unsigned long long)send_errors, (unsigned long long)corrupt,
         (unsigned long long)percentile(received, 0.50), (unsigned long long)percentile(received, 0.99), measured);
  return 0;
}
