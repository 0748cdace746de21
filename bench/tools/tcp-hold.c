// tcp-hold.c - opens many TCP connections through a proxy and holds them idle, for the memory
// scenario of `npm run bench` (loopback only; every step bounded in count and time).
//
// A connection counts as held once it is proxied end to end: connect, send one byte, get that
// byte back from the echo backend behind the proxy. Connections are opened INFLIGHT at a time,
// round robin over the targets (-t) and the source addresses (-s: several source IPs give more
// than one ephemeral port range to draw from). Opening stops at the first connection that fails
// (refused, reset, closed, or no echo within -w ms), at MAX, or after -T seconds; connections
// already under way are finished. Then every held connection is probed again (one byte each way)
// to count those still alive.
//
// Events, one JSON line each on stdout; "checkpoint" and "verified" wait for a line on stdin
// (the harness samples the proxy's memory meanwhile):
//   {"event":"checkpoint","held":N,"ms":...}               with -c N, once N are held
//   {"event":"result","held":...,"attempted":...,"failed":...,"stop":"...","ms":...}
//   {"event":"verified","alive":...,"dropped":...,"ms":...}   then reads a command line:
//        "probe" probes again (another "verified"); anything else, or EOF, closes
//   {"event":"closed"}                                      all closed with RST, exiting
//
// usage: tcp-hold -t IP:PORT [-t ...] [-s SRC_IP ...] [-n MAX=60000] [-c CHECKPOINT=0]
//                 [-p INFLIGHT=256] [-w TIMEOUT_MS=5000] [-T SECONDS=60]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { NONE, CONNECTING, AWAIT_ECHO, HELD, AWAIT_PROBE };

struct conn {
  uint8_t state;
  int32_t pending_index; /* position in pending[], -1 when not pending */
  uint64_t since_ns;
};

static struct sockaddr_in targets[64], sources[64];
static int ntargets, nsources;
static struct conn *conns;
static int conns_len;
static int *pending, npending;
static int ep;
static long held, attempted, failed, dropped;
static char stop_reason[160] = "";

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int parse_addr(const char *s, struct sockaddr_in *out, int need_port) {
  char host[64];
  const char *colon = strrchr(s, ':');
  size_t len = colon ? (size_t)(colon - s) : strlen(s);
  if (len >= sizeof host || (need_port && !colon)) return -1;
  memcpy(host, s, len);
  host[len] = 0;
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons(colon ? (unsigned short)atoi(colon + 1) : 0);
  return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

static void pending_add(int fd) {
  conns[fd].pending_index = npending;
  pending[npending++] = fd;
}

static void pending_remove(int fd) {
  int i = conns[fd].pending_index;
  if (i < 0) return;
  int last = pending[--npending];
  pending[i] = last;
  conns[last].pending_index = i;
  conns[fd].pending_index = -1;
}

static void drop(int fd) {
  pending_remove(fd);
  conns[fd].state = NONE;
  close(fd);
}

static void fail(int fd, const char *why) {
  failed++;
  if (!stop_reason[0]) snprintf(stop_reason, sizeof stop_reason, "first failure: %s", why);
  if (fd >= 0) drop(fd);
}

static void watch(int fd, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  epoll_ctl(ep, op, fd, &ev);
}

static void open_one(void) {
  static unsigned long next;
  const struct sockaddr_in *to = &targets[next % (unsigned long)ntargets];
  const struct sockaddr_in *from = nsources ? &sources[next % (unsigned long)nsources] : NULL;
  next++;
  attempted++;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    char why[96];
    snprintf(why, sizeof why, "client socket(): %s", strerror(errno));
    fail(-1, why);
    return;
  }
  if (fd >= conns_len) {
    close(fd);
    fail(-1, "client descriptor table full");
    return;
  }
  if (from) {
    int on = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
    if (bind(fd, (const struct sockaddr *)from, sizeof *from) != 0) {
      char why[96];
      snprintf(why, sizeof why, "client bind(): %s", strerror(errno));
      close(fd);
      fail(-1, why);
      return;
    }
  }
  conns[fd].state = CONNECTING;
  conns[fd].since_ns = now_ns();
  pending_add(fd);
  if (connect(fd, (const struct sockaddr *)to, sizeof *to) != 0 && errno != EINPROGRESS) {
    char why[96];
    snprintf(why, sizeof why, "connect(): %s", strerror(errno));
    fail(fd, why);
    return;
  }
  watch(fd, EPOLLOUT, EPOLL_CTL_ADD);
}

static void on_event(int fd, uint32_t events) {
  struct conn *c = &conns[fd];
  char b[64];
  switch (c->state) {
    case CONNECTING: {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
        char why[96];
        snprintf(why, sizeof why, "connect: %s", strerror(err ? err : ECONNRESET));
        fail(fd, why);
        return;
      }
      if (write(fd, "h", 1) != 1) {
        fail(fd, "write after connect failed");
        return;
      }
      c->state = AWAIT_ECHO;
      watch(fd, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
      return;
    }
    case AWAIT_ECHO:
    case AWAIT_PROBE: {
      ssize_t got = read(fd, b, sizeof b);
      if (got > 0) {
        if (c->state == AWAIT_ECHO) held++;
        c->state = HELD;
        pending_remove(fd);
        return;
      }
      if (got < 0 && errno == EAGAIN) return;
      if (c->state == AWAIT_PROBE) {
        dropped++;
        drop(fd);
        return;
      }
      fail(fd, got == 0 ? "closed before the echo" : (errno == ECONNRESET ? "reset before the echo" : strerror(errno)));
      return;
    }
    case HELD: {
      ssize_t got = read(fd, b, sizeof b);
      if (got > 0 || (got < 0 && errno == EAGAIN)) return;
      held--;
      dropped++;
      drop(fd);
      return;
    }
    default:
      return;
  }
}

static void run_events(int timeout_ms) {
  struct epoll_event ready[512];
  int n = epoll_wait(ep, ready, 512, timeout_ms);
  for (int i = 0; i < n; i++) on_event(ready[i].data.fd, ready[i].events);
}

static void expire(uint64_t timeout_ns, int probing) {
  uint64_t t = now_ns();
  for (int i = 0; i < npending;) {
    int fd = pending[i];
    if (t - conns[fd].since_ns < timeout_ns) {
      i++;
      continue;
    }
    if (probing) {
      held--;
      dropped++;
      drop(fd);
    } else {
      fail(fd, conns[fd].state == CONNECTING ? "timeout connecting" : "timeout waiting for the echo");
    }
  }
}

static void wait_stdin_line(void) {
  char c;
  while (read(0, &c, 1) == 1 && c != '\n') {
  }
}

/* Every held connection once more: one byte there and back. Prints the "verified" event. */
static void probe(uint64_t timeout_ns, long inflight) {
  long dropped_before = dropped;
  uint64_t p0 = now_ns();
  for (int fd = 0; fd < conns_len; fd++) {
    // At most INFLIGHT probes at once (the pending list is sized for that): wait for room first.
    while (npending >= inflight) {
      run_events(5);
      expire(timeout_ns, 1);
    }
    if (conns[fd].state != HELD) continue;
    if (write(fd, "v", 1) != 1) {
      held--;
      dropped++;
      drop(fd);
      continue;
    }
    conns[fd].state = AWAIT_PROBE;
    conns[fd].since_ns = now_ns();
    pending_add(fd);
  }
  while (npending > 0) {
    run_events(5);
    expire(timeout_ns, 1);
  }
  printf("{\"event\":\"verified\",\"alive\":%ld,\"dropped\":%ld,\"ms\":%.0f}\n", held, dropped - dropped_before, (now_ns() - p0) / 1e6);
  fflush(stdout);
}

int main(int argc, char **argv) {
  long max = 60000, checkpoint = 0, inflight = 256, timeout_ms = 5000;
  double time_limit = 60;
  int opt;
  while ((opt = getopt(argc, argv, "t:s:n:c:p:w:T:")) != -1) {
    switch (opt) {
      case 't':
        if (ntargets == 64 || parse_addr(optarg, &targets[ntargets++], 1) != 0) { fprintf(stderr, "tcp-hold: bad target %s\n", optarg); return 2; }
        break;
      case 's':
        if (nsources == 64 || parse_addr(optarg, &sources[nsources++], 0) != 0) { fprintf(stderr, "tcp-hold: bad source %s\n", optarg); return 2; }
        break;
      case 'n': max = atol(optarg); break;
      case 'c': checkpoint = atol(optarg); break;
      case 'p': inflight = atol(optarg); break;
      case 'w': timeout_ms = atol(optarg); break;
      case 'T': time_limit = atof(optarg); break;
      default: return 2;
    }
  }
  if (ntargets == 0 || max < 1 || max > 1000000 || inflight < 1 || timeout_ms < 1 || time_limit <= 0 || time_limit > 3600) {
    fprintf(stderr, "usage: %s -t IP:PORT [-t ...] [-s SRC_IP ...] [-n MAX] [-c CHECKPOINT] [-p INFLIGHT] [-w TIMEOUT_MS] [-T SECONDS]\n", argv[0]);
    return 2;
  }
  // Never outlive a harness that forgot us: the whole run is bounded.
  alarm((unsigned)(time_limit + 300));

  struct rlimit r = {(rlim_t)max + 1000, (rlim_t)max + 1000};
  if (setrlimit(RLIMIT_NOFILE, &r) != 0) {
    getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
    fprintf(stderr, "tcp-hold: descriptor limit is %llu, below %ld wanted\n", (unsigned long long)r.rlim_cur, max + 1000);
  }
  conns_len = (int)r.rlim_cur;
  conns = calloc((size_t)conns_len, sizeof *conns);
  pending = calloc((size_t)inflight + 1, sizeof *pending);
  for (int i = 0; i < conns_len; i++) conns[i].pending_index = -1;
  ep = epoll_create1(0);

  uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(time_limit * 1e9), timeout_ns = (uint64_t)timeout_ms * 1000000ull;
  int checkpoint_done = checkpoint <= 0;
  for (;;) {
    int opening = !stop_reason[0];
    if (opening && held + npending >= max) {
      if (npending == 0) snprintf(stop_reason, sizeof stop_reason, "cap of %ld reached", max);
      opening = 0;
    }
    if (opening && now_ns() >= deadline) {
      snprintf(stop_reason, sizeof stop_reason, "time limit of %.0f s reached", time_limit);
      opening = 0;
    }
    if (!checkpoint_done && held >= checkpoint && npending == 0) {
      printf("{\"event\":\"checkpoint\",\"held\":%ld,\"ms\":%.0f}\n", held, (now_ns() - t0) / 1e6);
      fflush(stdout);
      wait_stdin_line();
      checkpoint_done = 1;
      continue;
    }
    long room = checkpoint_done ? max : checkpoint;
    while (opening && !stop_reason[0] && npending < inflight && held + npending < room) open_one();
    if (!opening && npending == 0) break;
    run_events(5);
    expire(timeout_ns, 0);
  }
  double ramp_ms = (now_ns() - t0) / 1e6;
  printf("{\"event\":\"result\",\"held\":%ld,\"attempted\":%ld,\"failed\":%ld,\"stop\":\"%s\",\"ms\":%.0f}\n", held, attempted, failed,
         stop_reason, ramp_ms);
  fflush(stdout);

  for (;;) {
    probe(timeout_ns, inflight);
    // "probe" asks for another round (the harness re-checks earlier clients); anything else,
    // or the end of stdin, closes.
    char line[32];
    int len = 0;
    char ch;
    while (len < (int)sizeof line - 1 && read(0, &ch, 1) == 1 && ch != '\n') line[len++] = ch;
    line[len] = 0;
    if (strcmp(line, "probe") != 0) break;
  }

  struct linger hard = {1, 0};
  for (int fd = 0; fd < conns_len; fd++) {
    if (conns[fd].state == NONE) continue;
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    close(fd);
  }
  printf("{\"event\":\"closed\"}\n");
  fflush(stdout);
  return 0;
}
