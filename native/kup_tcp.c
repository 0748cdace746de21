/*
 * The TCP data path of kube-userspace-proxy's established connections, moved out of JavaScript.
 *
 * Once a client's upstream is connected, JavaScript hands both descriptors to a relay here (its
 * libuv handles stay open, idle: the client's was never read, the upstream's reads are stopped).
 * The relay moves bytes both ways with recv/send through one shared buffer, on the loop Node runs
 * (tcp_relay.c), with no call into JavaScript per read and nothing allocated unless a destination is
 * full. JavaScript keeps the policy: it picks the endpoint and dials, ends a direction for the idle
 * timeout or the max connection age, stops a relay (destroy), reads the byte totals (memory shared
 * with it) and each relay's activity on its idle sweep. It is called once per connection, when the
 * relay is over, and closes or resets the two handles then.
 *
 * The upstream may be the addon's own socket (tcp_dial.c), and the client too, accepted from a
 * listener of the addon's (tcp_accept.c): then neither has a handle, and the relay closes both.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/epoll.h>
#include <sys/socket.h>
#include <node_api.h>
#include <uv.h>
#include "napi_args.h"
#include "tcp_relay.h"


/* An errno as Node names it (libuv's names are Node's): ECONNREFUSED, EMFILE... */
void throw_errno(napi_env env, int err, const char *what) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  throw_code(env, uv_err_name(-err), message);
}


instance_t *instance_of(napi_env env) {
  instance_t *inst = NULL;
  napi_get_instance_data(env, (void **)&inst);
  return inst;
}

/* ---- the call into JavaScript ---- */

void call_finished(group_t *g, napi_value list) {
  napi_env env = g->inst->env;
  napi_value callback, recv, result;
  napi_get_reference_value(env, g->callback, &callback);
  napi_get_global(env, &recv);
  /* make_callback, not call_function: Node then runs the microtasks and nextTicks JavaScript queues. */
  napi_status status = napi_make_callback(env, g->async, recv, callback, 1, &list, &result);
  if (status == napi_pending_exception) {
    napi_value exception;
    napi_get_and_clear_last_exception(env, &exception);
    napi_fatal_exception(env, exception);
  }
}

/* ---- the functions JavaScript calls ---- */

static void group_finalize(napi_env env, void *data, void *hint) {
  group_t *g = data;
  /* Relays hold the group: it is freed with the last of them (or here, when it has none). */
  g->closed = 1;
  if (g->relays == 0 && g->reporting == 0) free_group(env, g);
}

group_t *get_group(napi_env env, napi_value v) {
  group_t *g = NULL;
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_external || napi_get_value_external(env, v, (void **)&g) != napi_ok || g == NULL) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "not a relay group");
    return NULL;
  }
  return g;
}

/* createGroup(onFinished([owner, flags, owner, flags...]), totals: Float64Array(2)) → group */
static napi_value create_group(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  napi_valuetype type;
  napi_typeof(env, argv[0], &type);
  if (type != napi_function) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
    return NULL;
  }
  double *data = get_totals(env, argv[1], TOTAL_COUNT, "totals must be a Float64Array of 2");
  if (data == NULL) return NULL;
  group_t *g = calloc(1, sizeof *g);
  if (g == NULL) {
    throw_errno(env, ENOMEM, "relay group");
    return NULL;
  }
  g->inst = instance_of(env);
  g->totals = data;
  napi_create_reference(env, argv[0], 1, &g->callback);
  napi_create_reference(env, argv[1], 1, &g->totals_ref);
  napi_value name;
  napi_create_string_utf8(env, "kup_tcp_relay", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &g->async);
  napi_value external;
  napi_create_external(env, g, group_finalize, NULL, &external);
  return external;
}

static int get_fd(napi_env env, napi_value v, int *out, const char *name) {
  int32_t fd = -1;
  if (napi_get_value_int32(env, v, &fd) != napi_ok || fd < 0) {
    char message[96];
    snprintf(message, sizeof message, "%s must be an open descriptor", name);
    throw_code(env, "ERR_INVALID_ARG_TYPE", message);
    return 0;
  }
  *out = fd;
  return 1;
}

/* A relay of g in a free slot, not yet counted (see adopt); NULL with an exception thrown. */
relay_t *new_relay(napi_env env, group_t *g) {
  if (g->closed) {
    throw_code(env, "ERR_TCP_NATIVE_CLOSED", "the relay group is closed");
    return NULL;
  }
  instance_t *inst = g->inst;
  if (inst->free_count == 0 && !grow_slots(inst)) {
    throw_errno(env, ENOMEM, "relay slots");
    return NULL;
  }
  relay_t *r = calloc(1, sizeof *r);
  if (r == NULL) {
    throw_errno(env, ENOMEM, "relay");
    return NULL;
  }
  r->group = g;
  r->inst = inst;
  r->client_fd = r->upstream_fd = -1;
  r->client_events = r->upstream_events = -1;
  /* No pipes until a direction is a bulk flow (a dial that fails is released before it has any). */
  r->up.pipe_r = r->up.pipe_w = r->down.pipe_r = r->down.pipe_w = -1;
  r->slot = inst->free_slots[inst->free_count - 1];
  r->generation = inst->generations[r->slot];
  return r;
}

/* The two descriptors' directions, once both are known. */
static void set_directions(relay_t *r, int client_fd) {
  r->client_fd = client_fd;
  r->up = (direction_t){.src = client_fd, .dst = r->upstream_fd, .pipe_r = -1, .pipe_w = -1, .total = TOTAL_BYTES_IN};
  r->down = (direction_t){.src = r->upstream_fd, .dst = client_fd, .pipe_r = -1, .pipe_w = -1, .total = TOTAL_BYTES_OUT};
}

/* The relay takes its slot and is counted; its id for JavaScript. */
napi_value adopt(napi_env env, relay_t *r, napi_value owner) {
  instance_t *inst = r->inst;
  inst->free_count--;
  inst->slots[r->slot] = r;
  napi_create_reference(env, owner, 1, &r->owner);
  r->group->relays++;
  /* The loop is kept alive while a relay runs (or a dial connects), as by a handle that reads. */
  if (inst->polling++ == 0) uv_ref((uv_handle_t *)&inst->epoll_poll);
  napi_value id;
  napi_create_double(env, relay_id(r), &id);
  return id;
}

static void get_header(napi_env env, napi_value v, void **header, size_t *header_len) {
  bool is_buffer = false;
  napi_is_buffer(env, v, &is_buffer);
  if (is_buffer) napi_get_buffer_info(env, v, header, header_len);
}

/* relay(group, clientFd, upstreamFd, owner, header: Buffer | undefined) → id */
static napi_value start_relay(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  group_t *g = get_group(env, argv[0]);
  if (g == NULL) return NULL;
  int client_fd, upstream_fd;
  if (!get_fd(env, argv[1], &client_fd, "client descriptor") || !get_fd(env, argv[2], &upstream_fd, "upstream descriptor")) return NULL;
  void *header = NULL;
  size_t header_len = 0;
  get_header(env, argv[4], &header, &header_len);
  relay_t *r = new_relay(env, g);
  if (r == NULL) return NULL;
  r->upstream_fd = upstream_fd;
  set_directions(r, client_fd);
  int err = relay_start(r, header, header_len);
  if (err != 0) {
    free(r);
    throw_errno(env, err, "relay");
    return NULL;
  }
  return adopt(env, r, argv[3]);
}

static relay_t *get_relay(napi_env env, napi_value v) {
  double id = -1;
  if (napi_get_value_double(env, v, &id) != napi_ok) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "relay id must be a number");
    return NULL;
  }
  return find_relay(instance_of(env), id);
}

/*
 * attach(id, clientFd, owner, header: Buffer | undefined, ownsClient): a connected dial starts
 * relaying with the client (owner is the connection from now on; with ownsClient, a client the
 * addon accepted, the relay closes the client at its end too). Throws with the errno's name when
 * it cannot (the dial stays as it was: stop() closes it; the client is still the caller's).
 */
static napi_value attach_client(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  relay_t *r = get_relay(env, argv[0]);
  if (r == NULL || r->stage != STAGE_CONNECTED) {
    throw_code(env, "ERR_TCP_NATIVE_STATE", "relay id is not a connected dial");
    return NULL;
  }
  int client_fd;
  if (!get_fd(env, argv[1], &client_fd, "client descriptor")) return NULL;
  void *header = NULL;
  size_t header_len = 0;
  get_header(env, argv[3], &header, &header_len);
  bool owns_client = false;
  napi_get_value_bool(env, argv[4], &owns_client);
  set_directions(r, client_fd);
  r->stage = STAGE_RELAYING;
  int err = relay_start(r, header, header_len);
  if (err != 0) {
    r->stage = STAGE_CONNECTED;
    r->client_fd = -1;
    throw_errno(env, err, "relay");
    return NULL;
  }
  r->owns_client = owns_client;
  napi_delete_reference(env, r->owner);
  napi_create_reference(env, argv[2], 1, &r->owner);
  return NULL;
}

static direction_t *get_direction(napi_env env, relay_t *r, napi_value v) {
  int32_t which = -1;
  napi_get_value_int32(env, v, &which);
  return which == 0 ? &r->up : &r->down;
}

/* end(id, direction: 0 client → upstream | 1 upstream → client, drop: boolean) → false when the relay is over */
static napi_value end_direction(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  if (!get_args(env, info, 3, argv)) return NULL;
  relay_t *r = get_relay(env, argv[0]);
  if (r != NULL) {
    bool drop = false;
    napi_get_value_bool(env, argv[2], &drop);
    relay_end(r, get_direction(env, r, argv[1]), drop);
  }
  napi_get_boolean(env, r != NULL, &result);
  return result;
}

/* stop(id) → false when the relay was over already. JavaScript closes the descriptors next. */
static napi_value stop_relay(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  if (!get_args(env, info, 1, argv)) return NULL;
  relay_t *r = get_relay(env, argv[0]);
  if (r != NULL) relay_stop(r);
  napi_get_boolean(env, r != NULL, &result);
  return result;
}

/* activity(id) → a counter bumped by every byte moved (-1 when the relay is over). */
static napi_value relay_activity(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  if (!get_args(env, info, 1, argv)) return NULL;
  relay_t *r = get_relay(env, argv[0]);
  napi_create_double(env, r == NULL ? -1 : (double)r->activity, &result);
  return result;
}

/* writing(id, direction) → whether bytes wait for the direction's destination to take them. */
static napi_value relay_writing(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  if (!get_args(env, info, 2, argv)) return NULL;
  relay_t *r = get_relay(env, argv[0]);
  napi_get_boolean(env, r != NULL && has_pending(get_direction(env, r, argv[1])), &result);
  return result;
}

/* relayCount(group) → relays of the group still running. */
static napi_value relay_count(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  if (!get_args(env, info, 1, argv)) return NULL;
  group_t *g = get_group(env, argv[0]);
  if (g == NULL) return NULL;
  napi_create_uint32(env, g->relays, &result);
  return result;
}

static void instance_finalize(napi_env env, void *data, void *hint) {
  /* The loop is going away with the environment; the relays' descriptors close with the process. */
  instance_t *inst = data;
  for (int i = 0; i < inst->pipe_pool_count; i++) {
    close(inst->pipe_pool[i][0]);
    close(inst->pipe_pool[i][1]);
  }
  if (inst->reserve_fd >= 0) close(inst->reserve_fd);
  free(inst->scratch);
  free(inst->free_slots);
  free(inst->listeners);
  free(inst->listener_free);
  free(inst->listener_generations);
  free(inst->generations);
}

/*
 * trimHeap() → whether memory went back to the system. glibc keeps what a thread freed in that
 * thread's arena after the thread is gone; the manifest parse thread of a large start-up leaves
 * several MiB there. Elsewhere (musl) it does nothing.
 */
static napi_value trim_heap(napi_env env, napi_callback_info info) {
  (void)info;
  int released = 0;
#if defined(__GLIBC__)
  released = malloc_trim(0);
#endif
  napi_value result;
  napi_get_boolean(env, released != 0, &result);
  return result;
}


static napi_value init(napi_env env, napi_value exports) {
  instance_t *inst = calloc(1, sizeof *inst);
  if (inst == NULL) return NULL;
  inst->env = env;
  inst->reserve_fd = -1;
  inst->scratch = malloc(SCRATCH_SIZE);
  inst->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (inst->scratch == NULL || inst->epoll_fd < 0 || napi_get_uv_event_loop(env, &inst->loop) != napi_ok ||
      uv_poll_init(inst->loop, &inst->epoll_poll, inst->epoll_fd) != 0) {
    int err = inst->epoll_fd < 0 ? errno : ENOMEM;
    if (inst->epoll_fd >= 0) close(inst->epoll_fd);
    free(inst->scratch);
    free(inst);
    throw_errno(env, err, "kup_tcp");
    return NULL;
  }
  inst->epoll_poll.data = inst;
  uv_poll_start(&inst->epoll_poll, UV_READABLE, on_epoll_readable);
  /* Referenced only while a relay runs (see start_relay). */
  uv_unref((uv_handle_t *)&inst->epoll_poll);
  napi_set_instance_data(env, inst, instance_finalize, NULL);
  napi_property_descriptor props[] = {
      {"createGroup", NULL, create_group, NULL, NULL, NULL, napi_default, NULL},
      {"relay", NULL, start_relay, NULL, NULL, NULL, napi_default, NULL},
      {"dial", NULL, start_dial, NULL, NULL, NULL, napi_default, NULL},
      {"attach", NULL, attach_client, NULL, NULL, NULL, napi_default, NULL},
      {"end", NULL, end_direction, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, stop_relay, NULL, NULL, NULL, napi_default, NULL},
      {"activity", NULL, relay_activity, NULL, NULL, NULL, napi_default, NULL},
      {"writing", NULL, relay_writing, NULL, NULL, NULL, napi_default, NULL},
      {"relayCount", NULL, relay_count, NULL, NULL, NULL, napi_default, NULL},
      {"acceptWith", NULL, accept_with, NULL, NULL, NULL, napi_default, NULL},
      {"listen", NULL, start_listen, NULL, NULL, NULL, napi_default, NULL},
      {"unlisten", NULL, stop_listen, NULL, NULL, NULL, napi_default, NULL},
      {"listenerAddress", NULL, listener_address, NULL, NULL, NULL, napi_default, NULL},
      {"wantPeers", NULL, want_peers, NULL, NULL, NULL, napi_default, NULL},
      {"closeClient", NULL, close_client, NULL, NULL, NULL, napi_default, NULL},
      {"address", NULL, socket_address, NULL, NULL, NULL, napi_default, NULL},
      {"trimHeap", NULL, trim_heap, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
