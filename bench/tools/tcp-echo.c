// tcp-echo.c - TCP echo backend for `npm run bench` (loopback only), built to hold many idle
// connections: one thread, one epoll set, a few bytes of state per connection.
//
// Listens on BIND_IP at each PORT given (a service with several endpoints), echoes whatever
// arrives, and closes a connection when its peer does (FIN or RST). Raises its descriptor limit
// as far as it may; out of descriptors, it accepts and at once closes new connections (a spare
// descriptor is kept for that), so the peer sees a clear close instead of a hang, and says so on
// stderr at most once a second.
//
// usage: tcp-echo BIND_IP PORT [PORT...]
// Runs until killed. Prints "listening" on stdout once every port is bound.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LISTENERS 64
#define WANT_FDS 200000

static int listeners[MAX_LISTENERS], nlisteners;
static int spare_fd = -1;
static time_t last_complaint;
static long shed;

/* Out of descriptors: free the spare one, take the connection off the queue, close it. */
static int shed_one(int listener) {
  if (spare_fd >= 0) close(spare_fd);
  int c = accept(listener, NULL, NULL);
  if (c >= 0) {
    close(c);
    shed++;
  }
  spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  time_t now = time(NULL);
  if (now != last_complaint) {
    last_complaint = now;
    fprintf(stderr, "tcp-echo: out of descriptors, %ld connections closed at accept so far\n", shed);
  }
  return c >= 0;
}

static int is_listener(int fd) {
  for (int i = 0; i < nlisteners; i++)
    if (listeners[i] == fd) return 1;
  return 0;
}

static void raise_fd_limit(void) {
  struct rlimit r = {WANT_FDS, WANT_FDS};
  if (setrlimit(RLIMIT_NOFILE, &r) == 0) return;
  getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max;
  setrlimit(RLIMIT_NOFILE, &r);
  fprintf(stderr, "tcp-echo: descriptor limit is %llu (wanted %d)\n", (unsigned long long)r.rlim_cur, WANT_FDS);
}

int main(int argc, char **argv) {
  if (argc < 3 || argc - 2 > MAX_LISTENERS) {
    fprintf(stderr, "usage: %s BIND_IP PORT [PORT...]\n", argv[0]);
    return 2;
  }
  raise_fd_limit();
  spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int ep = epoll_create1(0);
  for (int a = 2; a < argc; a++) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[a]));
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
      fprintf(stderr, "tcp-echo: bad address %s\n", argv[1]);
      return 2;
    }
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int on = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s, 4096) != 0) {
      fprintf(stderr, "tcp-echo: cannot listen on %s:%s: %s\n", argv[1], argv[a], strerror(errno));
      return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    listeners[nlisteners++] = s;
  }
  printf("listening\n");
  fflush(stdout);

  struct epoll_event ready[256];
  char buf[16384];
  for (;;) {
    int n = epoll_wait(ep, ready, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("tcp-echo: epoll_wait");
      return 1;
    }
    for (int e = 0; e < n; e++) {
      int fd = ready[e].data.fd;
      if (is_listener(fd)) {
        for (;;) {
          int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK);
          if (c < 0) {
            if ((errno == EMFILE || errno == ENFILE) && shed_one(fd)) continue;
            break;
          }
          int on = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
          struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
        }
        continue;
      }
      int done = 0;
      for (;;) {
        ssize_t got = read(fd, buf, sizeof buf);
        if (got > 0) {
          // Echo replies are a few bytes here; a peer that does not read them is simply cut off.
          if (write(fd, buf, (size_t)got) != got) { done = 1; break; }
          continue;
        }
        if (got == 0 || (errno != EAGAIN && errno != EINTR)) done = 1;
        break;
      }
      if (done) close(fd);  // close() also drops it from the epoll set
    }
  }
}
