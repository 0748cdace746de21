/*
 * The native TCP data path's relays (see kup_tcp.c for the whole): the bytes of established
 * connections moved between their two sockets, with the half-close, backpressure and reset rules
 * of lib/proxy/tcp/handle-forwarder.ts, and the end of a relay reported to JavaScript once.
 *
 * Every relay's descriptors are in one epoll set of the addon's own, which the loop watches through
 * one uv_poll_t: registering a descriptor costs one epoll_ctl, where a uv_poll_t per descriptor
 * costs libuv's check (an ADD and a DEL), an ioctl and the ADD. The set is level-triggered, so a
 * read that leaves bytes behind (a full buffer) is simply called again at the next wakeup.
 *
 * A direction starts with recv/send through one buffer shared by every relay (a request and its
 * response cost two calls each way, and nothing is held per connection). Once a read fills that
 * buffer the direction is a bulk flow, and moves on with splice() through a pipe of its own (Go's
 * way, and the legacy proxier's): the kernel passes the bytes from one socket to the other without
 * copying them out to this process and back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <node_api.h>
#include <uv.h>
#include "tcp_relay.h"

/* Reads per direction per wakeup, so one busy connection does not hold up the others. */
#define READS_PER_WAKEUP 8

double relay_id(const relay_t *r) {
  return (double)r->generation * (double)SLOT_MAX + (double)r->slot;
}

relay_t *find_relay(instance_t *inst, double id) {
  if (!(id >= 0) || id > 9007199254740991.0) return NULL;
  uint64_t n = (uint64_t)id;
  uint32_t slot = (uint32_t)(n & (SLOT_MAX - 1));
  uint32_t generation = (uint32_t)(n >> SLOT_BITS);
  if (slot >= inst->slot_count) return NULL;
  relay_t *r = inst->slots[slot];
  if (r == NULL || r->generation != generation || r->finished) return NULL;
  return r;
}

int grow_slots(instance_t *inst) {
  if (inst->slot_count >= SLOT_MAX) return 0;
  uint32_t cap = inst->slot_count == 0 ? 1024 : inst->slot_count * 2;
  if (cap > SLOT_MAX) cap = SLOT_MAX;
  relay_t **slots = realloc(inst->slots, cap * sizeof *slots);
  if (slots == NULL) return 0;
  inst->slots = slots;
  uint32_t *generations = realloc(inst->generations, cap * sizeof *generations);
  if (generations == NULL) return 0;
  inst->generations = generations;
  uint32_t *free_slots = realloc(inst->free_slots, cap * sizeof *free_slots);
  if (free_slots == NULL) return 0;
  inst->free_slots = free_slots;
  for (uint32_t i = cap; i > inst->slot_count; i--) {
    inst->slots[i - 1] = NULL;
    inst->generations[i - 1] = 0;
    inst->free_slots[inst->free_count++] = i - 1;
  }
  inst->slot_count = cap;
  return 1;
}

void free_group(napi_env env, group_t *g) {
  napi_delete_reference(env, g->callback);
  napi_delete_reference(env, g->totals_ref);
  napi_async_destroy(env, g->async);
  free(g);
}

/* An epoll event's data: the relay's slot and generation (a stale event names a slot's old relay), and the side. */
static uint64_t event_data(const relay_t *r, int upstream) {
  return ((uint64_t)r->generation << 32) | ((uint64_t)r->slot << 1) | (uint64_t)(upstream != 0);
}

int has_pending(const direction_t *d) {
  return d->pending != NULL || d->in_pipe > 0;
}

/* A pipe for a bulk flow, from the pool or new; 0 when none can be had (the flow stays on recv/send). */
static int take_pipe(instance_t *inst, direction_t *d) {
  int fds[2];
  if (inst->pipe_pool_count > 0) {
    inst->pipe_pool_count--;
    fds[0] = inst->pipe_pool[inst->pipe_pool_count][0];
    fds[1] = inst->pipe_pool[inst->pipe_pool_count][1];
  } else {
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return 0;
    /* Best effort: a smaller pipe only means more calls. */
    fcntl(fds[1], F_SETPIPE_SZ, PIPE_SIZE);
  }
  d->pipe_r = fds[0];
  d->pipe_w = fds[1];
  return 1;
}

/* Gives an empty pipe back to the pool; one with bytes still in it is closed. */
static void put_pipe(instance_t *inst, direction_t *d) {
  if (d->pipe_r < 0) return;
  if (d->in_pipe == 0 && inst->pipe_pool_count < PIPE_POOL_MAX) {
    inst->pipe_pool[inst->pipe_pool_count][0] = d->pipe_r;
    inst->pipe_pool[inst->pipe_pool_count][1] = d->pipe_w;
    inst->pipe_pool_count++;
  } else {
    close(d->pipe_r);
    close(d->pipe_w);
  }
  d->pipe_r = d->pipe_w = -1;
  d->in_pipe = 0;
}

static int is_complete(const relay_t *r) {
  return r->up.src_ended && r->up.shut && r->down.src_ended && r->down.shut;
}

/* Releases what the relay holds and its slot; its client descriptor is JavaScript's to close unless
 * the addon accepted it, its upstream too unless the addon dialed it (closed here, reset when the
 * end says so). The group is freed with its last relay once JavaScript let go of it, unless
 * keep_group (it is called next). */
static void release(relay_t *r, int keep_group) {
  instance_t *inst = r->inst;
  group_t *g = r->group;
  r->finished = 1;
  free(r->up.pending);
  free(r->down.pending);
  r->up.pending = r->down.pending = NULL;
  put_pipe(inst, &r->up);
  put_pipe(inst, &r->down);
  if (r->owns_client && r->client_fd >= 0) {
    if (r->finish_flags & RESET_CLIENT) {
      struct linger lg = {.l_onoff = 1, .l_linger = 0};
      setsockopt(r->client_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(r->client_fd);
    r->client_fd = -1;
  }
  if (r->owns_upstream && r->upstream_fd >= 0) {
    /* Its close also takes it out of the epoll set: no EPOLL_CTL_DEL. */
    if (r->finish_flags & RESET_UPSTREAM) {
      struct linger lg = {.l_onoff = 1, .l_linger = 0};
      setsockopt(r->upstream_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(r->upstream_fd);
    r->upstream_fd = -1;
  }
  inst->slots[r->slot] = NULL;
  inst->generations[r->slot] = (r->generation + 1) & ((1u << 29) - 1);
  inst->free_slots[inst->free_count++] = r->slot;
  g->relays--;
  if (g->closed && g->relays == 0 && g->reporting == 0 && !keep_group) free_group(inst->env, g);
  if (--inst->polling == 0) uv_unref((uv_handle_t *)&inst->epoll_poll);
  napi_delete_reference(inst->env, r->owner);
  free(r);
}

/* Tells JavaScript of the ended relays, one call per group, and releases them. */
static void report_finished(instance_t *inst) {
  napi_env env = inst->env;
  while (inst->done_count > 0) {
    group_t *g = inst->done[0]->group;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value list;
    napi_create_array(env, &list);
    uint32_t k = 0, keep = 0, count = inst->done_count;
    /* Taken off the list before the call: one that ends during it is added and reported on its own. */
    inst->done_count = 0;
    relay_t *others[DONE_MAX];
    for (uint32_t i = 0; i < count; i++) {
      relay_t *r = inst->done[i];
      if (r->group != g) {
        others[keep++] = r;
        continue;
      }
      napi_value owner, flags;
      napi_get_reference_value(env, r->owner, &owner);
      if (r->stage == STAGE_CONNECTING) {
        /* A dial's end: connected (the relay waits for JavaScript to attach the client), or failed. */
        const char *code = r->dial_error == 0 ? "" : uv_err_name(-r->dial_error);
        napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &flags);
        if (r->dial_error == 0) {
          r->stage = STAGE_CONNECTED;
          r->finished = 0;
        }
      } else {
        napi_create_int32(env, r->finish_flags, &flags);
      }
      napi_set_element(env, list, k++, owner);
      napi_set_element(env, list, k++, flags);
      if (r->finished) release(r, 1);
    }
    for (uint32_t i = 0; i < keep && inst->done_count < DONE_MAX; i++) inst->done[inst->done_count++] = others[i];
    g->reporting++;
    inst->reported = 1;
    call_finished(g, list);
    g->reporting--;
    napi_close_handle_scope(env, scope);
    if (g->closed && g->relays == 0 && g->reporting == 0) free_group(env, g);
  }
}

/*
 * The relay is over: JavaScript is told once, closes (or resets) both descriptors, which takes them
 * out of the epoll set, and settles its counts. Called last by whoever ends it: r is not to be used
 * after. Within a wakeup the report waits for its end: one call into JavaScript for all the relays
 * that ended in it (under load, many connections end in each).
 */
static void finish(relay_t *r, int flags) {
  instance_t *inst = r->inst;
  r->finished = 1;
  r->finish_flags = flags;
  inst->done[inst->done_count++] = r;
  if (!inst->in_wakeup || inst->done_count == DONE_MAX) report_finished(inst);
}

void relay_stop(relay_t *r) {
  /* An upstream the addon dialed: reset if it was relaying (JavaScript's destroy() resets both peers). */
  if (r->stage == STAGE_RELAYING) r->finish_flags = RESET_UPSTREAM | (r->owns_client ? RESET_CLIENT : 0);
  release(r, 0);
}

int dial_watch(relay_t *r) {
  struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = event_data(r, 1)};
  if (epoll_ctl(r->inst->epoll_fd, EPOLL_CTL_ADD, r->upstream_fd, &ev) != 0) return errno;
  r->upstream_events = EPOLLOUT;
  return 0;
}

/*
 * A dial's socket is writable, or failed: its connect is over. SO_ERROR is read only on a failure's
 * event (a connect that succeeded says EPOLLOUT alone), so a connection costs no getsockopt. The
 * end is reported to JavaScript with the others of this wakeup (see finish).
 */
static void on_dialed(relay_t *r, uint32_t events) {
  int err = 0;
  r->batch_events[1] = 0;
  if (events & (EPOLLERR | EPOLLHUP)) {
    socklen_t len = sizeof err;
    if (getsockopt(r->upstream_fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  }
  if (err == 0 && !(events & EPOLLOUT)) return;
  r->dial_error = err;
  if (err != 0) {
    /* Its close also takes it out of the epoll set. */
    close(r->upstream_fd);
    r->upstream_fd = -1;
    r->upstream_events = -1;
  }
  instance_t *inst = r->inst;
  r->finished = 1;
  inst->done[inst->done_count++] = r;
  if (!inst->in_wakeup || inst->done_count == DONE_MAX) report_finished(inst);
}

/* An error on fd: it is closed, its peer reset (as HandleForwarder.abortFrom). */
static void abort_from(relay_t *r, int fd) {
  finish(r, fd == r->client_fd ? RESET_UPSTREAM : RESET_CLIENT);
}

static int wanted_events(const relay_t *r, int upstream) {
  const direction_t *reads = upstream ? &r->down : &r->up;
  const direction_t *writes = upstream ? &r->up : &r->down;
  int ev = 0;
  /* EPOLLRDHUP: an event says when the peer's FIN has come (see shut). */
  if (!reads->src_ended && !has_pending(reads)) ev |= EPOLLIN | EPOLLRDHUP;
  if (has_pending(writes)) ev |= EPOLLOUT;
  return ev;
}

/* Registers fd for what its directions wait for now; 0 or an errno. */
static int watch(relay_t *r, int upstream) {
  int *current = upstream ? &r->upstream_events : &r->client_events;
  int want = wanted_events(r, upstream);
  if (want == *current || (*current < 0 && want == 0)) return 0;
  struct epoll_event ev = {.events = (uint32_t)want, .data.u64 = event_data(r, upstream)};
  if (epoll_ctl(r->inst->epoll_fd, *current < 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, upstream ? r->upstream_fd : r->client_fd, &ev) != 0) return errno;
  *current = want;
  return 0;
}

/* Keeps what could not be written yet; src is not read until dst took it (one buffer ahead, no more). */
static int stash(direction_t *d, const unsigned char *data, size_t len) {
  d->pending = malloc(len);
  if (d->pending == NULL) return 0;
  memcpy(d->pending, data, len);
  d->pending_len = len;
  d->pending_off = 0;
  return 1;
}

static int pump(relay_t *r, direction_t *d);

/* The FIN to d's destination, nothing being pending for it. 0 when the relay ended (r freed). */
static int shut(relay_t *r, direction_t *d) {
  if (d->shut) return 1;
  d->shut = 1;
  direction_t *back = d == &r->up ? &r->down : &r->up;
  /*
   * The destination's own FIN came in this wakeup's events, not read yet: reading it first (as its
   * event would a moment later) usually ends the relay here, and its close then sends our FIN, as
   * HandleForwarder's does: a shutdown() saved, and the EPOLL_CTL_MOD that would stop reading the
   * other side.
   */
  if ((r->batch_events[d == &r->down ? 0 : 1] & (EPOLLRDHUP | EPOLLHUP)) && !back->src_ended && !has_pending(back)) {
    if (!pump(r, back)) return 0;
  }
  if (is_complete(r)) {
    /* Its close sends the FIN: nothing is pending and its own FIN came, so nothing unread is left. */
    finish(r, 0);
    return 0;
  }
  if (shutdown(d->dst, SHUT_WR) != 0 && errno != ENOTCONN) {
    abort_from(r, d->dst);
    return 0;
  }
  return 1;
}

/* d's destination gets a FIN once nothing is pending for it. 0 when the relay ended. */
static int end(relay_t *r, direction_t *d) {
  if (d->ending) return 1;
  d->ending = 1;
  if (!has_pending(d)) return shut(r, d);
  return 1;
}

/* Moves what the pipe holds on to d's destination: 0 when the relay ended. */
static int flush_pipe(relay_t *r, direction_t *d) {
  ssize_t w = splice(d->pipe_r, NULL, d->dst, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  if (w < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 1;
    abort_from(r, d->dst);
    return 0;
  }
  d->in_pipe -= (size_t)w;
  return 1;
}

/* Writes what is pending for d's destination. 0 when the relay ended. */
static int flush(relay_t *r, direction_t *d) {
  if (d->in_pipe > 0) {
    if (!flush_pipe(r, d)) return 0;
    if (d->in_pipe > 0) return 1;
    r->activity++;
    if (d->ending) return shut(r, d);
    return 1;
  }
  ssize_t w = send(d->dst, d->pending + d->pending_off, d->pending_len - d->pending_off, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 1;
    abort_from(r, d->dst);
    return 0;
  }
  d->pending_off += (size_t)w;
  if (d->pending_off < d->pending_len) return 1;
  free(d->pending);
  d->pending = NULL;
  d->pending_len = d->pending_off = 0;
  /* As a 'drain' on the other paths: the source was held back, not quiet. */
  r->activity++;
  if (d->ending) return shut(r, d);
  return 1;
}

/* A bulk flow: d's source spliced into its pipe, the pipe into d's destination. 0 when the relay ended. */
static int pump_pipe(relay_t *r, direction_t *d) {
  for (int i = 0; i < READS_PER_WAKEUP; i++) {
    ssize_t n = splice(d->src, NULL, d->pipe_w, NULL, PIPE_SIZE, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      r->activity++;
      r->group->totals[d->total] += (double)n;
      d->in_pipe += (size_t)n;
      if (!flush_pipe(r, d)) return 0;
      /* The destination is full: the source waits until it took what the pipe holds. */
      if (d->in_pipe > 0) return 1;
      if (n < PIPE_SIZE) return 1;
      continue;
    }
    if (n == 0) {
      d->src_ended = 1;
      return end(r, d);
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
    if (errno == EINTR) continue;
    abort_from(r, d->src);
    return 0;
  }
  return 1;
}

/* Reads d's source and writes what comes to its destination. 0 when the relay ended. */
static int pump(relay_t *r, direction_t *d) {
  /* Not for a direction whose bytes are dropped or abort the connection: those are read here. */
  if (d->pipe_r >= 0 && !d->drop && !d->shut) return pump_pipe(r, d);
  unsigned char *buf = r->inst->scratch;
  for (int i = 0; i < READS_PER_WAKEUP; i++) {
    ssize_t n = recv(d->src, buf, SCRATCH_SIZE, 0);
    if (n > 0) {
      r->activity++;
      /* The endpoint's side was ended for the max connection age: what the client sends now is dropped. */
      if (d->drop) continue;
      r->group->totals[d->total] += (double)n;
      if (d->shut) {
        /* The destination got our FIN (the idle timeout): bytes for it abort the connection. */
        finish(r, RESET_CLIENT | RESET_UPSTREAM);
        return 0;
      }
      ssize_t w = send(d->dst, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          abort_from(r, d->dst);
          return 0;
        }
        w = 0;
      }
      if (w < n) {
        if (!stash(d, buf + w, (size_t)(n - w))) {
          finish(r, RESET_CLIENT | RESET_UPSTREAM);
          return 0;
        }
        return 1;
      }
      /* A short read took all there was: another would only say EAGAIN. */
      if (n < SCRATCH_SIZE) return 1;
      if (d->pipe_r < 0 && take_pipe(r->inst, d)) return pump_pipe(r, d);
      continue;
    }
    if (n == 0) {
      d->src_ended = 1;
      return end(r, d);
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
    if (errno == EINTR) continue;
    /* A read error (ECONNRESET): this side is gone, the other is reset. */
    abort_from(r, d->src);
    return 0;
  }
  return 1;
}

/* Brings both descriptors' registrations up to date. 0 when the relay ended. */
static int rewatch(relay_t *r) {
  if (watch(r, 0) != 0 || watch(r, 1) != 0) {
    /* The kernel could not take the registration (ENOMEM): a local failure, both sides reset. */
    finish(r, RESET_CLIENT | RESET_UPSTREAM);
    return 0;
  }
  return 1;
}

static void on_event(relay_t *r, int upstream, uint32_t events) {
  direction_t *reads = upstream ? &r->down : &r->up;
  direction_t *writes = upstream ? &r->up : &r->down;
  int fd = upstream ? r->upstream_fd : r->client_fd;
  r->batch_events[upstream] = 0;
  if (has_pending(writes) && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && !flush(r, writes)) return;
  if (!reads->src_ended && !has_pending(reads) && (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) && !pump(r, reads)) return;
  if ((events & (EPOLLERR | EPOLLHUP)) && wanted_events(r, upstream) == 0) {
    if (events & EPOLLERR) {
      /* Nothing to read or write on it, and it failed: as a failed read. */
      abort_from(r, fd);
      return;
    }
    /* Both its ways are closed and nothing is wanted of it: out of the set, or the hangup repeats. */
    int *current = upstream ? &r->upstream_events : &r->client_events;
    if (*current >= 0) epoll_ctl(r->inst->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    *current = -1;
  }
  rewatch(r);
}

/* The running relay an event names; NULL for one that ended earlier in this batch (its slot may hold a new one). */
static relay_t *event_relay(instance_t *inst, uint64_t data) {
  uint32_t slot = (uint32_t)(data & 0xffffffffu) >> 1;
  uint32_t generation = (uint32_t)(data >> 32);
  if (slot >= inst->slot_count) return NULL;
  relay_t *r = inst->slots[slot];
  if (r == NULL || r->generation != generation || r->finished) return NULL;
  return r;
}

/* Handles one batch of the set's events, then reports the relays that ended and accepts from the
 * listeners; whether it called into JavaScript for either. */
static int handle_events(instance_t *inst, int n) {
  inst->in_wakeup = 1;
  inst->reported = 0;
  /* Each side's events of this wakeup, known before any is handled (see shut); on_event clears them. */
  for (int i = 0; i < n; i++) {
    relay_t *r = event_relay(inst, inst->events[i].data.u64);
    if (r != NULL) r->batch_events[inst->events[i].data.u64 & 1] = inst->events[i].events;
  }
  for (int i = 0; i < n; i++) {
    uint64_t data = inst->events[i].data.u64;
    if (listener_event(inst, data)) continue;
    relay_t *r = event_relay(inst, data);
    if (r == NULL) continue;
    if (r->stage == STAGE_RELAYING) on_event(r, (int)(data & 1), inst->events[i].events);
    else if (r->stage == STAGE_CONNECTING) on_dialed(r, inst->events[i].events);
    /* STAGE_CONNECTED: JavaScript attaches the client in the report's call (or stops it); nothing to do. */
  }
  inst->in_wakeup = 0;
  int accepts = inst->ready_count > 0;
  report_finished(inst);
  accept_ready(inst);
  return inst->reported || accepts;
}

/*
 * The set is read again before going back to the loop when a batch was busy: by the time its events
 * are handled, the sockets they wrote to have usually answered. Each round the loop goes instead
 * costs its epoll_wait and Node's work per turn of the loop (its immediate check makes an object
 * and a callback scope every turn), where this costs one epoll_wait. A quiet batch (one round trip
 * at a time) goes straight back: the answer is still on its way, and asking would be a wasted call.
 * So does a batch that called into JavaScript (connections that began or ended): what JavaScript
 * started then (timers, its own handles, a backend in the same process) gets the loop's turn first,
 * as before.
 */
#define BUSY_BATCH 4
#define ROUNDS_PER_WAKEUP 4

void on_epoll_readable(uv_poll_t *handle, int status, int events) {
  instance_t *inst = handle->data;
  for (int round = 0; round < ROUNDS_PER_WAKEUP; round++) {
    int n = epoll_wait(inst->epoll_fd, inst->events, EVENT_BATCH, 0);
    if (handle_events(inst, n) || n < BUSY_BATCH) break;
  }
}

int relay_start(relay_t *r, const unsigned char *header, size_t header_len) {
  if (header_len > 0) {
    ssize_t w = send(r->upstream_fd, header, header_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return errno;
    if (w < 0) w = 0;
    /* The client is read once the header is out. */
    if ((size_t)w < header_len && !stash(&r->up, header + w, header_len - (size_t)w)) return ENOMEM;
  }
  int err = watch(r, 0);
  if (err == 0) err = watch(r, 1);
  if (err != 0) {
    if (r->client_events >= 0) epoll_ctl(r->inst->epoll_fd, EPOLL_CTL_DEL, r->client_fd, NULL);
    free(r->up.pending);
    r->up.pending = NULL;
    return err;
  }
  return 0;
}

void relay_end(relay_t *r, direction_t *d, int drop) {
  if (drop) d->drop = 1;
  if (end(r, d)) rewatch(r);
}
