// udp-echo.c - UDP echo backend for `npm run bench` (loopback only).
//
// Sends every datagram back to its sender, unchanged. It drains the socket in batches
// (recvmmsg) and answers each batch with one sendmmsg, so one core echoes far more datagrams
// than any proxy in front of it can carry: the backend is never what a UDP figure measures.
//
// usage: udp-echo BIND_IP PORT
// Runs until killed. Prints "listening" on stdout once bound.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BATCH = 64, DGRAM_MAX = 65536 };

static char payload[BATCH][DGRAM_MAX];
static struct sockaddr_in from[BATCH];
static struct iovec vec[BATCH];
static struct mmsghdr hdr[BATCH];

static void arm(int i) {
  vec[i].iov_base = payload[i];
  vec[i].iov_len = DGRAM_MAX;
  memset(&hdr[i].msg_hdr, 0, sizeof hdr[i].msg_hdr);
  hdr[i].msg_hdr.msg_iov = &vec[i];
  hdr[i].msg_hdr.msg_iovlen = 1;
  hdr[i].msg_hdr.msg_name = &from[i];
  hdr[i].msg_hdr.msg_namelen = sizeof from[i];
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s BIND_IP PORT\n", argv[0]);
    return 2;
  }
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
    fprintf(stderr, "udp-echo: bad address %s\n", argv[1]);
    return 2;
  }
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) { perror("udp-echo: socket"); return 1; }
  int on = 1, bytes = 8 << 20;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  setsockopt(s, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  setsockopt(s, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  if (bind(s, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("udp-echo: bind"); return 1; }
  printf("listening\n");
  fflush(stdout);

  for (;;) {
    for (int i = 0; i < BATCH; i++) arm(i);
    // Block for the first datagram, then take whatever else is already queued.
    int got = recvmmsg(s, hdr, BATCH, MSG_WAITFORONE, NULL);
    if (got < 0) {
      if (errno == EINTR) continue;
      perror("udp-echo: recvmmsg");
      return 1;
    }
    for (int i = 0; i < got; i++) vec[i].iov_len = hdr[i].msg_len;
    for (int done = 0; done < got;) {
      int sent = sendmmsg(s, hdr + done, (unsigned)(got - done), 0);
      if (sent <= 0) {
        if (sent < 0 && errno == EINTR) continue;
        break;  // a full socket buffer drops the rest, as any UDP server would
      }
      done += sent;
    }
  }
}
