/*
 * The listening sockets of the native TCP data path: a service port's listener is made here, not
 * by libuv, and its descriptor is in the relays' epoll set. On readiness the pending clients are
 * accepted in one bounded batch and JavaScript is called once for the batch (the balancer's pick
 * and the dial are JavaScript's). A client is a bare descriptor from accept to close: no libuv
 * handle, no JavaScript object of Node's, and the relay that carries it closes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <node_api.h>
#include <uv.h>
#include "napi_args.h"
#include "tcp_relay.h"

/* Clients accepted per listener per wakeup: one busy port does not hold up the loop. */
#define ACCEPT_BATCH 64
/* Set in a listener's epoll data: relays' generations stay below 2^29, so theirs never has it. */
#define LISTENER_TAG (1ull << 63)
#define LISTENER_GENERATIONS ((1u << 29) - 1)

typedef struct listener {
  int fd;
  uint32_t slot;
  uint32_t generation;
  napi_ref owner;
  /* Each client's address comes with the batch (the port's balancer or header needs it). */
  int wants_peer;
} listener_t;

static uint64_t listener_data(const listener_t *l) {
  return LISTENER_TAG | ((uint64_t)l->generation << 32) | l->slot;
}

static listener_t *find_listener(instance_t *inst, uint64_t data) {
  uint32_t slot = (uint32_t)(data & 0xffffffffu);
  uint32_t generation = (uint32_t)(data >> 32) & LISTENER_GENERATIONS;
  if (slot >= inst->listener_count) return NULL;
  listener_t *l = inst->listeners[slot];
  return l != NULL && l->generation == generation ? l : NULL;
}

static listener_t *get_listener(napi_env env, napi_value v) {
  double id = -1;
  napi_get_value_double(env, v, &id);
  if (!(id >= 0) || id > 9007199254740991.0) return NULL;
  uint64_t n = (uint64_t)id;
  return find_listener(instance_of(env), LISTENER_TAG | ((n >> SLOT_BITS) << 32) | (n & (SLOT_MAX - 1)));
}

static int take_slot(instance_t *inst, uint32_t *slot) {
  if (inst->listener_free_count == 0) {
    uint32_t cap = inst->listener_count == 0 ? 64 : inst->listener_count * 2;
    if (cap > SLOT_MAX) return 0;
    listener_t **listeners = realloc(inst->listeners, cap * sizeof *listeners);
    if (listeners == NULL) return 0;
    inst->listeners = listeners;
    uint32_t *free_slots = realloc(inst->listener_free, cap * sizeof *free_slots);
    if (free_slots == NULL) return 0;
    inst->listener_free = free_slots;
    uint32_t *generations = realloc(inst->listener_generations, cap * sizeof *generations);
    if (generations == NULL) return 0;
    inst->listener_generations = generations;
    for (uint32_t i = cap; i > inst->listener_count; i--) {
      inst->listeners[i - 1] = NULL;
      inst->listener_generations[i - 1] = 0;
      inst->listener_free[inst->listener_free_count++] = i - 1;
    }
    inst->listener_count = cap;
  }
  *slot = inst->listener_free[--inst->listener_free_count];
  return 1;
}

/* The socket, bound and listening; a negative errno (nothing left open) when it cannot be. */
static int open_listener(const struct sockaddr_storage *addr, socklen_t addr_len, uint32_t flags, int32_t backlog) {
  int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  /* As libuv's bind: a port whose last connections linger in TIME_WAIT can be bound again. */
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (addr->ss_family == AF_INET6 && (flags & LISTEN_IPV6_ONLY)) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if ((flags & LISTEN_REUSE_PORT) && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  /* Linux copies TCP_NODELAY to every socket accepted from this one: no setsockopt per client. */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (bind(fd, (const struct sockaddr *)addr, addr_len) != 0 || listen(fd, backlog) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

/*
 * listen(ip, port, flags: 1 ipv6Only | 2 reusePort, backlog, owner, wantsPeers) → the listener's
 * id (>= 0), or a negative errno when the socket cannot be made, bound or listen (nothing left
 * open then: the caller words the error as net.Server would). Its batches of clients go to the
 * accept callback with owner.
 */
napi_value start_listen(napi_env env, napi_callback_info info) {
  napi_value argv[6], result;
  if (!get_args(env, info, 6, argv)) return NULL;
  instance_t *inst = instance_of(env);
  if (inst->accept_callback == NULL) {
    throw_code(env, "ERR_TCP_NATIVE_STATE", "acceptWith() was not called");
    return NULL;
  }
  struct sockaddr_storage addr;
  socklen_t addr_len = parse_address(env, argv[0], argv[1], 0, &addr, "listen");
  if (addr_len == 0) return NULL;
  uint32_t flags = 0;
  int32_t backlog = 511;
  bool wants_peer = false;
  napi_get_value_uint32(env, argv[2], &flags);
  napi_get_value_int32(env, argv[3], &backlog);
  napi_get_value_bool(env, argv[5], &wants_peer);
  listener_t *l = calloc(1, sizeof *l);
  uint32_t slot = 0;
  if (l == NULL || !take_slot(inst, &slot)) {
    free(l);
    napi_create_int32(env, -ENOMEM, &result);
    return result;
  }
  int fd = open_listener(&addr, addr_len, flags, backlog);
  struct epoll_event ev = {.events = EPOLLIN};
  if (fd >= 0) {
    l->fd = fd;
    l->slot = slot;
    l->generation = inst->listener_generations[slot];
    ev.data.u64 = listener_data(l);
    if (epoll_ctl(inst->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      fd = -errno;
    }
  }
  if (fd < 0) {
    inst->listener_free[inst->listener_free_count++] = slot;
    free(l);
    napi_create_int32(env, fd, &result);
    return result;
  }
  l->wants_peer = wants_peer;
  /* Kept for running out of descriptors (see close_waiting). */
  if (inst->reserve_fd < 0) inst->reserve_fd = open("/", O_RDONLY | O_CLOEXEC);
  napi_create_reference(env, argv[4], 1, &l->owner);
  inst->listeners[slot] = l;
  /* A listener keeps the loop alive, as a listening libuv handle does. */
  if (inst->polling++ == 0) uv_ref((uv_handle_t *)&inst->epoll_poll);
  napi_create_double(env, (double)l->generation * (double)SLOT_MAX + (double)slot, &result);
  return result;
}

/* unlisten(id) → false when it was closed already. Accepted clients are not touched. */
napi_value stop_listen(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  if (!get_args(env, info, 1, argv)) return NULL;
  instance_t *inst = instance_of(env);
  listener_t *l = get_listener(env, argv[0]);
  if (l != NULL) {
    /* Its close takes it out of the epoll set; an event of this wakeup for it finds no listener. */
    close(l->fd);
    inst->listeners[l->slot] = NULL;
    inst->listener_generations[l->slot] = (l->generation + 1) & LISTENER_GENERATIONS;
    inst->listener_free[inst->listener_free_count++] = l->slot;
    napi_delete_reference(env, l->owner);
    free(l);
    if (--inst->polling == 0) uv_unref((uv_handle_t *)&inst->epoll_poll);
  }
  napi_get_boolean(env, l != NULL, &result);
  return result;
}

/* listenerAddress(id) → [ip, port] the listener is bound to (the kernel's choice for port 0); undefined once closed. */
napi_value listener_address(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  listener_t *l = get_listener(env, argv[0]);
  return address_pair(env, l == NULL ? -1 : l->fd, 0);
}

/* wantPeers(id, yes): whether the batches carry each client's address from now on. */
napi_value want_peers(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  listener_t *l = get_listener(env, argv[0]);
  bool yes = false;
  napi_get_value_bool(env, argv[1], &yes);
  if (l != NULL) l->wants_peer = yes;
  return NULL;
}

/* acceptWith(callback(owner, [fd, (ip, port,)...], error: '' | errno name)): where every listener's batches go. */
napi_value accept_with(napi_env env, napi_callback_info info) {
  napi_value argv[1], name;
  if (!get_args(env, info, 1, argv)) return NULL;
  instance_t *inst = instance_of(env);
  napi_valuetype type;
  napi_typeof(env, argv[0], &type);
  if (type != napi_function) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
    return NULL;
  }
  if (inst->accept_callback != NULL) {
    napi_delete_reference(env, inst->accept_callback);
    napi_async_destroy(env, inst->accept_async);
  }
  napi_create_reference(env, argv[0], 1, &inst->accept_callback);
  napi_create_string_utf8(env, "kup_tcp_accept", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &inst->accept_async);
  return NULL;
}

/* closeClient(fd, reset): a client the port turns away is closed, with a RST when reset. */
napi_value close_client(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t fd = -1;
  bool reset = false;
  napi_get_value_int32(env, argv[0], &fd);
  napi_get_value_bool(env, argv[1], &reset);
  if (fd < 0) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "client descriptor must be an open descriptor");
    return NULL;
  }
  if (reset) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  close(fd);
  return NULL;
}

/*
 * Out of descriptors, the clients waiting in the queue would be reported again at every wakeup and
 * never served: as libuv does, a descriptor kept in reserve is let go, and they are accepted and
 * closed at once (the client sees its connection closed, not a hang).
 */
static void close_waiting(instance_t *inst, int fd) {
  if (inst->reserve_fd < 0) return;
  close(inst->reserve_fd);
  for (int i = 0; i < ACCEPT_BATCH; i++) {
    int client = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (client < 0) break;
    close(client);
  }
  inst->reserve_fd = open("/", O_RDONLY | O_CLOEXEC);
}

static void accept_batch(instance_t *inst, listener_t *l) {
  int fds[ACCEPT_BATCH];
  struct sockaddr_storage addrs[ACCEPT_BATCH];
  int count = 0, err = 0;
  while (count < ACCEPT_BATCH) {
    socklen_t len = sizeof addrs[count];
    int fd = accept4(l->fd, l->wants_peer ? (struct sockaddr *)&addrs[count] : NULL, l->wants_peer ? &len : NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      /* A client gone before it was accepted is no error of the port's (libuv skips it too). */
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
    fds[count++] = fd;
  }
  if (err == EMFILE || err == ENFILE) {
    /*
     * Each client needs one more descriptor, for its upstream, and the batch took them all: half of
     * it is let go (closed, as those still waiting), so that the other half can be served. libuv's
     * accept loop, calling JavaScript (which dials at once) for each client, shares them the same way.
     */
    for (int keep = count / 2; count > keep;) close(fds[--count]);
    close_waiting(inst, l->fd);
  }
  if (count == 0 && err == 0) return;
  napi_env env = inst->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value argv[3], value, ip, port, callback, recv, result;
  napi_create_array_with_length(env, (size_t)count * (l->wants_peer ? 3 : 1), &argv[1]);
  uint32_t k = 0;
  for (int i = 0; i < count; i++) {
    napi_create_int32(env, fds[i], &value);
    napi_set_element(env, argv[1], k++, value);
    if (l->wants_peer) {
      if (!address_values(env, &addrs[i], &ip, &port)) {
        napi_get_undefined(env, &ip);
        napi_create_uint32(env, 0, &port);
      }
      napi_set_element(env, argv[1], k++, ip);
      napi_set_element(env, argv[1], k++, port);
    }
  }
  napi_get_reference_value(env, l->owner, &argv[0]);
  napi_create_string_utf8(env, err == 0 ? "" : uv_err_name(-err), NAPI_AUTO_LENGTH, &argv[2]);
  napi_get_reference_value(env, inst->accept_callback, &callback);
  napi_get_global(env, &recv);
  /* l may be closed by the call: not used after it. */
  if (napi_make_callback(env, inst->accept_async, recv, callback, 3, argv, &result) == napi_pending_exception) {
    napi_value exception;
    napi_get_and_clear_last_exception(env, &exception);
    napi_fatal_exception(env, exception);
  }
  napi_close_handle_scope(env, scope);
}

int listener_event(instance_t *inst, uint64_t data) {
  if (!(data & LISTENER_TAG)) return 0;
  if (inst->ready_count < EVENT_BATCH) inst->ready[inst->ready_count++] = data;
  return 1;
}

void accept_ready(instance_t *inst) {
  uint32_t count = inst->ready_count;
  inst->ready_count = 0;
  for (uint32_t i = 0; i < count; i++) {
    listener_t *l = find_listener(inst, inst->ready[i]);
    if (l != NULL) accept_batch(inst, l);
  }
}
