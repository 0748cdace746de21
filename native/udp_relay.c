/*
 * The native UDP data path's datagrams and sessions (see kup_udp.c for the whole): a readable
 * socket's datagrams relayed to the session's other socket in batches, and a session's sockets
 * closed once libuv has let go of them.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <node_api.h>
#include <uv.h>
#include "udp_session.h"

const char *errno_code(int err) {
  switch (err) {
    case ECONNREFUSED: return "ECONNREFUSED";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENETUNREACH: return "ENETUNREACH";
    case EMSGSIZE: return "EMSGSIZE";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    default: return "EIO";
  }
}

/* An IP literal and port as a socket address of the given family (AF_UNSPEC: the literal's own). */
int make_address(const char *ip, uint16_t port, int family, struct sockaddr_storage *out, socklen_t *len) {
  memset(out, 0, sizeof *out);
  if (family != AF_INET6) {
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    if (inet_pton(AF_INET, ip, &a->sin_addr) == 1) {
      if (family == AF_UNSPEC || family == AF_INET) {
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        *len = sizeof *a;
        return 1;
      }
    }
  }
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1 && family != AF_INET) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    *len = sizeof *a6;
    return 1;
  }
  if (family == AF_INET6) {
    /* A client of a dual-stack listening socket, named by its IPv4 address: v4-mapped. */
    struct in_addr v4;
    if (inet_pton(AF_INET, ip, &v4) == 1) {
      memset(out, 0, sizeof *out);
      a6->sin6_family = AF_INET6;
      a6->sin6_port = htons(port);
      a6->sin6_addr.s6_addr[10] = 0xff;
      a6->sin6_addr.s6_addr[11] = 0xff;
      memcpy(&a6->sin6_addr.s6_addr[12], &v4, 4);
      *len = sizeof *a6;
      return 1;
    }
  }
  return 0;
}

int same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
  return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

double session_id(const session_t *s) {
  return (double)s->generation * (double)SLOT_MAX + (double)s->slot;
}

session_t *find_session(instance_t *inst, double id) {
  if (!(id >= 0) || id > 9007199254740991.0) return NULL;
  uint64_t n = (uint64_t)id;
  uint32_t slot = (uint32_t)(n & (SLOT_MAX - 1));
  uint32_t generation = (uint32_t)(n >> SLOT_BITS);
  if (slot >= inst->slot_count) return NULL;
  session_t *s = inst->slots[slot];
  if (s == NULL || s->generation != generation || s->closing) return NULL;
  return s;
}

/* ---- the data path ---- */

void mark_active(session_t *s) {
  s->last_active = uv_now(s->inst->loop);
  if (s->listed_active) return;
  group_t *g = s->group;
  if (g->active_count == g->active_cap) {
    uint32_t cap = g->active_cap == 0 ? 64 : g->active_cap * 2;
    uint32_t *grown = realloc(g->active, cap * sizeof *grown);
    if (grown == NULL) return; /* Counted anyway; only its place in the idle order is late. */
    g->active = grown;
    g->active_cap = cap;
  }
  g->active[g->active_count++] = s->slot;
  s->listed_active = 1;
}

/*
 * Reads what is queued on `from` (up to BATCH datagrams per round, a few rounds per readable
 * event so one busy session cannot hold the loop) and writes it to `to`. A full send buffer drops
 * the rest of the batch, as a UDP socket does. Returns an errno the caller must act on, or 0.
 */
static int relay(session_t *s, int from, int to, int from_client) {
  instance_t *inst = s->inst;
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < BATCH; i++) {
      inst->iovs[i].iov_base = inst->buffers + (size_t)i * DATAGRAM_MAX;
      inst->iovs[i].iov_len = DATAGRAM_MAX;
      memset(&inst->msgs[i].msg_hdr, 0, sizeof inst->msgs[i].msg_hdr);
      inst->msgs[i].msg_hdr.msg_iov = &inst->iovs[i];
      inst->msgs[i].msg_hdr.msg_iovlen = 1;
      if (from_client) {
        inst->msgs[i].msg_hdr.msg_name = &inst->sources[i];
        inst->msgs[i].msg_hdr.msg_namelen = sizeof inst->sources[i];
      }
    }
    int n = recvmmsg(from, inst->msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
      return errno;
    }
    if (n == 0) return 0;
    /* Keep this client's datagrams in order; hand any other to JavaScript (queued before connect()). */
    int keep = 0;
    for (int i = 0; i < n; i++) {
      struct mmsghdr *m = &inst->msgs[i];
      if (from_client && !same_address(&inst->sources[i], &s->client)) {
        call_js(s->group, EVENT_STRAY, s, NULL, m->msg_hdr.msg_iov->iov_base, m->msg_len, &inst->sources[i]);
        if (s->closing) return 0;
        continue;
      }
      inst->iovs[keep].iov_base = m->msg_hdr.msg_iov->iov_base;
      inst->iovs[keep].iov_len = m->msg_len;
      memset(&inst->msgs[keep].msg_hdr, 0, sizeof inst->msgs[keep].msg_hdr);
      inst->msgs[keep].msg_hdr.msg_iov = &inst->iovs[keep];
      inst->msgs[keep].msg_hdr.msg_iovlen = 1;
      keep++;
    }
    int sent = 0;
    int send_error = 0;
    while (sent < keep) {
      int r = sendmmsg(to, inst->msgs + sent, keep - sent, MSG_DONTWAIT);
      if (r < 0) {
        if (errno == EINTR) continue;
        send_error = errno;
        break;
      }
      sent += r;
    }
    if (sent > 0) {
      double bytes = 0;
      for (int i = 0; i < sent; i++) bytes += inst->msgs[i].msg_len;
      double *totals = s->group->totals;
      if (from_client) {
        s->packets_in += sent;
        s->bytes_in += bytes;
        totals[TOTAL_PACKETS_IN] += sent;
        totals[TOTAL_BYTES_IN] += bytes;
      } else {
        s->packets_out += sent;
        s->bytes_out += bytes;
        totals[TOTAL_PACKETS_OUT] += sent;
        totals[TOTAL_BYTES_OUT] += bytes;
      }
      mark_active(s);
    }
    /* The upstream socket reports the endpoint's ICMP errors on send as well as on receive. */
    if (send_error == ECONNREFUSED && from_client) return -ECONNREFUSED;
    if (n < BATCH) return 0;
  }
  return 0;
}

static void report_error(session_t *s, int upstream, int err) {
  call_js(s->group, upstream ? EVENT_UPSTREAM_ERROR : EVENT_REPLY_ERROR, s, errno_code(err), NULL, 0, NULL);
}

/* libuv stops a poll handle whose socket has an error pending (POLLERR) and says UV_EBADF. */
static int pending_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

void on_reply_readable(uv_poll_t *handle, int status, int events) {
  session_t *s = handle->data;
  if (s->closing) return;
  int err = status < 0 ? pending_error(s->reply_fd) : relay(s, s->reply_fd, s->upstream_fd, 1);
  if (s->closing) return;
  if (err == -ECONNREFUSED) report_error(s, 1, ECONNREFUSED);
  /* ECONNREFUSED here: the client's port is closed now. The session stays until it is idle. */
  else if (err != 0 && err != ECONNREFUSED) report_error(s, 0, err);
  /* A poll libuv stopped on an error goes on if JavaScript kept the session. */
  if (!s->closing && status < 0) uv_poll_start(&s->reply_poll, UV_READABLE, on_reply_readable);
}

void on_upstream_readable(uv_poll_t *handle, int status, int events) {
  session_t *s = handle->data;
  if (s->closing) return;
  int err = status < 0 ? pending_error(s->upstream_fd) : relay(s, s->upstream_fd, s->reply_fd, 0);
  if (s->closing) return;
  if (err > 0) report_error(s, 1, err);
  if (!s->closing && status < 0) uv_poll_start(&s->upstream_poll, UV_READABLE, on_upstream_readable);
}

/* ---- session life ---- */

static void on_poll_closed(uv_handle_t *handle) {
  session_t *s = handle->data;
  if (--s->open_polls > 0) return;
  close(s->reply_fd);
  close(s->upstream_fd);
  free(s);
}

static void release_slot(instance_t *inst, session_t *s) {
  inst->slots[s->slot] = NULL;
  inst->generations[s->slot] = (s->generation + 1) & ((1u << 29) - 1);
  inst->free_slots[inst->free_count++] = s->slot;
}

void free_group(napi_env env, group_t *g) {
  napi_delete_reference(env, g->callback);
  napi_delete_reference(env, g->totals_ref);
  napi_async_destroy(env, g->async);
  free(g->active);
  free(g);
}

void close_session(session_t *s) {
  if (s->closing) return;
  s->closing = 1;
  group_t *g = s->group;
  g->sessions--;
  release_slot(s->inst, s);
  if (g->closed && g->sessions == 0) {
    /* JavaScript let go of the group first: it goes with its last session. */
    free_group(s->inst->env, g);
  }
  uv_close((uv_handle_t *)&s->reply_poll, on_poll_closed);
  uv_close((uv_handle_t *)&s->upstream_poll, on_poll_closed);
}

int grow_slots(instance_t *inst) {
  if (inst->slot_count >= SLOT_MAX) return 0;
  uint32_t cap = inst->slot_count == 0 ? 1024 : inst->slot_count * 2;
  if (cap > SLOT_MAX) cap = SLOT_MAX;
  session_t **slots = realloc(inst->slots, cap * sizeof *slots);
  if (slots == NULL) return 0;
  inst->slots = slots;
  uint32_t *generations = realloc(inst->generations, cap * sizeof *generations);
  if (generations == NULL) return 0;
  inst->generations = generations;
  uint32_t *free_slots = realloc(inst->free_slots, cap * sizeof *free_slots);
  if (free_slots == NULL) return 0;
  inst->free_slots = free_slots;
  for (uint32_t i = cap; i > inst->slot_count; i--) {
    slots[i - 1] = NULL;
    generations[i - 1] = 0;
    free_slots[inst->free_count++] = i - 1;
  }
  inst->slot_count = cap;
  return 1;
}

int open_socket(int family, int *out) {
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  *out = fd;
  return 0;
}
