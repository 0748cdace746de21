/*
 * The UDP data path of kube-userspace-proxy's sessions, moved out of JavaScript.
 *
 * A session is two connected UDP sockets: the reply socket, bound to the service's listening
 * address and port and connected to the client (the kernel then delivers that client's datagrams
 * to it rather than to the listening socket), and the upstream socket, connected to the endpoint
 * JavaScript picked. Each is watched with a uv_poll_t on the loop Node runs; when one is readable,
 * its datagrams are read in batches with recvmmsg() and written to the other with sendmmsg(),
 * with no call into JavaScript per datagram and no allocation.
 *
 * JavaScript keeps the policy: it picks the endpoint, opens and closes sessions, reads the
 * counters, and is called only for what needs a decision: an upstream error (an ICMP port
 * unreachable, reported by the kernel on a connected socket), a reply socket error, and a datagram
 * of another client that reached a reply socket before its connect() (those belong to the
 * listening socket's path).
 *
 * Datagrams are never truncated: the buffers hold 65,535 bytes, more than a UDP payload can be.
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
#include "napi_args.h"
#include "udp_session.h"

/* ---- small helpers ---- */


static void throw_errno(napi_env env, int err, const char *what) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  const char *code = "EIO";
  switch (err) {
    case EMFILE: code = "EMFILE"; break;
    case ENFILE: code = "ENFILE"; break;
    case ENOBUFS: code = "ENOBUFS"; break;
    case ENOMEM: code = "ENOMEM"; break;
    case EADDRINUSE: code = "EADDRINUSE"; break;
    case EADDRNOTAVAIL: code = "EADDRNOTAVAIL"; break;
    case EACCES: code = "EACCES"; break;
    case EAFNOSUPPORT: code = "EAFNOSUPPORT"; break;
    case EINVAL: code = "EINVAL"; break;
    case ENETUNREACH: code = "ENETUNREACH"; break;
    case EPERM: code = "EPERM"; break;
    default: break;
  }
  throw_code(env, code, message);
}


static int get_string(napi_env env, napi_value v, char *out, size_t size, const char *name) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, out, size, &len) != napi_ok || len == 0 || len >= size - 1) {
    char message[96];
    snprintf(message, sizeof message, "%s must be an IP address string", name);
    throw_code(env, "ERR_INVALID_ARG_TYPE", message);
    return 0;
  }
  return 1;
}

static int get_port(napi_env env, napi_value v, uint16_t *out, const char *name) {
  int32_t port = -1;
  if (napi_get_value_int32(env, v, &port) != napi_ok || port < 1 || port > 65535) {
    char message[96];
    snprintf(message, sizeof message, "%s must be a port from 1 to 65535", name);
    throw_code(env, "ERR_INVALID_ARG_TYPE", message);
    return 0;
  }
  *out = (uint16_t)port;
  return 1;
}

/* ---- calls into JavaScript ---- */

void call_js(group_t *g, int kind, session_t *s, const char *code, const unsigned char *data, size_t len,
                    const struct sockaddr_storage *from) {
  napi_env env = g->inst->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, recv, argv[6], result;
  size_t argc = 3;
  napi_get_reference_value(env, g->callback, &callback);
  /* make_callback wants an object for `this`. */
  napi_get_global(env, &recv);
  napi_create_int32(env, kind, &argv[0]);
  napi_create_double(env, session_id(s), &argv[1]);
  if (code != NULL) napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &argv[2]);
  else napi_get_null(env, &argv[2]);
  if (data != NULL && from != NULL) {
    void *copy = NULL;
    char host[INET6_ADDRSTRLEN] = "";
    uint16_t port = 0;
    napi_create_buffer_copy(env, len, data, &copy, &argv[3]);
    if (from->ss_family == AF_INET) {
      const struct sockaddr_in *a = (const struct sockaddr_in *)from;
      inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
      port = ntohs(a->sin_port);
    } else {
      const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)from;
      inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      port = ntohs(a->sin6_port);
    }
    napi_create_string_utf8(env, host, NAPI_AUTO_LENGTH, &argv[4]);
    napi_create_int32(env, port, &argv[5]);
    argc = 6;
  }
  /* make_callback, not call_function: Node then runs the microtasks and nextTicks JavaScript queues. */
  napi_status status = napi_make_callback(env, g->async, recv, callback, argc, argv, &result);
  if (status == napi_pending_exception) {
    napi_value exception;
    napi_get_and_clear_last_exception(env, &exception);
    napi_fatal_exception(env, exception);
  }
  napi_close_handle_scope(env, scope);
}

/* ---- the functions JavaScript calls ---- */

static instance_t *instance_of(napi_env env) {
  instance_t *inst = NULL;
  napi_get_instance_data(env, (void **)&inst);
  return inst;
}

static void group_finalize(napi_env env, void *data, void *hint) {
  group_t *g = data;
  /* Sessions hold the group: it is freed with the last of them (or here, when it has none). */
  g->closed = 1;
  if (g->sessions == 0) free_group(env, g);
}

static group_t *get_group(napi_env env, napi_value v) {
  group_t *g = NULL;
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_external || napi_get_value_external(env, v, (void **)&g) != napi_ok || g == NULL) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "not a session group");
    return NULL;
  }
  return g;
}

/* createGroup(callback, totals: Float64Array(4), maxSessions) → group */
static napi_value create_group(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  napi_valuetype type;
  napi_typeof(env, argv[0], &type);
  if (type != napi_function) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
    return NULL;
  }
  double *data = get_totals(env, argv[1], TOTAL_COUNT, "totals must be a Float64Array of 4");
  if (data == NULL) return NULL;
  uint32_t max_sessions = 0;
  if (napi_get_value_uint32(env, argv[2], &max_sessions) != napi_ok || max_sessions == 0) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "maxSessions must be a positive integer");
    return NULL;
  }
  group_t *g = calloc(1, sizeof *g);
  if (g == NULL) {
    throw_errno(env, ENOMEM, "session group");
    return NULL;
  }
  g->inst = instance_of(env);
  g->totals = data;
  g->max_sessions = max_sessions;
  napi_create_reference(env, argv[0], 1, &g->callback);
  napi_create_reference(env, argv[1], 1, &g->totals_ref);
  napi_value name;
  napi_create_string_utf8(env, "kup_udp_session", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &g->async);
  napi_value external;
  napi_create_external(env, g, group_finalize, NULL, &external);
  return external;
}

/* open(group, localIp, localPort, clientIp, clientPort, endpointIp, endpointPort) → id */
static napi_value open_session(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!get_args(env, info, 7, argv)) return NULL;
  group_t *g = get_group(env, argv[0]);
  if (g == NULL) return NULL;
  char local_ip[64], client_ip[64], endpoint_ip[64];
  uint16_t local_port, client_port, endpoint_port;
  if (!get_string(env, argv[1], local_ip, sizeof local_ip, "local address") || !get_port(env, argv[2], &local_port, "local port") ||
      !get_string(env, argv[3], client_ip, sizeof client_ip, "client address") || !get_port(env, argv[4], &client_port, "client port") ||
      !get_string(env, argv[5], endpoint_ip, sizeof endpoint_ip, "endpoint address") || !get_port(env, argv[6], &endpoint_port, "endpoint port"))
    return NULL;
  if (g->closed) {
    throw_code(env, "ERR_UDP_NATIVE_CLOSED", "the session group is closed");
    return NULL;
  }
  if (g->sessions >= g->max_sessions) {
    throw_code(env, "ERR_UDP_NATIVE_SESSION_LIMIT", "the session group holds its most sessions");
    return NULL;
  }
  struct sockaddr_storage local, client, endpoint;
  socklen_t local_len, client_len, endpoint_len;
  if (!make_address(local_ip, local_port, AF_UNSPEC, &local, &local_len)) {
    throw_code(env, "ERR_INVALID_ARG_VALUE", "local address is not an IP address");
    return NULL;
  }
  if (!make_address(client_ip, client_port, local.ss_family, &client, &client_len)) {
    throw_code(env, "ERR_INVALID_ARG_VALUE", "client address is not an IP address of the local address's family");
    return NULL;
  }
  if (!make_address(endpoint_ip, endpoint_port, AF_UNSPEC, &endpoint, &endpoint_len)) {
    throw_code(env, "ERR_INVALID_ARG_VALUE", "endpoint address is not an IP address");
    return NULL;
  }
  instance_t *inst = g->inst;
  if (inst->free_count == 0 && !grow_slots(inst)) {
    throw_errno(env, ENOMEM, "session slots");
    return NULL;
  }
  int upstream_fd = -1, reply_fd = -1, err;
  const char *step = "upstream socket";
  if ((err = open_socket(endpoint.ss_family, &upstream_fd)) != 0) goto fail;
  if (connect(upstream_fd, (struct sockaddr *)&endpoint, endpoint_len) != 0) {
    err = errno;
    step = "connect to the endpoint";
    goto fail;
  }
  step = "reply socket";
  if ((err = open_socket(local.ss_family, &reply_fd)) != 0) goto fail;
  int one = 1;
  setsockopt(reply_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(reply_fd, (struct sockaddr *)&local, local_len) != 0 || connect(reply_fd, (struct sockaddr *)&client, client_len) != 0) {
    err = errno;
    step = "bind the reply socket";
    goto fail;
  }
  session_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    err = ENOMEM;
    goto fail;
  }
  s->group = g;
  s->inst = inst;
  s->reply_fd = reply_fd;
  s->upstream_fd = upstream_fd;
  s->client = client;
  s->client_len = client_len;
  s->slot = inst->free_slots[--inst->free_count];
  s->generation = inst->generations[s->slot];
  inst->slots[s->slot] = s;
  s->last_active = uv_now(inst->loop);
  uv_poll_init(inst->loop, &s->reply_poll, reply_fd);
  uv_poll_init(inst->loop, &s->upstream_poll, upstream_fd);
  s->reply_poll.data = s;
  s->upstream_poll.data = s;
  s->open_polls = 2;
  uv_poll_start(&s->reply_poll, UV_READABLE, on_reply_readable);
  uv_poll_start(&s->upstream_poll, UV_READABLE, on_upstream_readable);
  g->sessions++;
  napi_value id;
  napi_create_double(env, session_id(s), &id);
  return id;
fail:
  if (upstream_fd >= 0) close(upstream_fd);
  if (reply_fd >= 0) close(reply_fd);
  throw_errno(env, err, step);
  return NULL;
}

/* The session an id names (NULL when closed); false, with a JavaScript error thrown, for a bad id. */
static bool get_session(napi_env env, napi_value v, session_t **out) {
  double id = -1;
  if (napi_get_value_double(env, v, &id) != napi_ok) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "session id must be a number");
    return false;
  }
  *out = find_session(instance_of(env), id);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  return !pending;
}

/* send(id, buffer) → bytes sent to the endpoint, or a negative errno; -1 for a closed session. */
static napi_value send_datagram(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  if (!get_args(env, info, 2, argv)) return NULL;
  void *data = NULL;
  size_t len = 0;
  bool is_buffer = false;
  napi_is_buffer(env, argv[1], &is_buffer);
  if (!is_buffer || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "datagram must be a Buffer");
    return NULL;
  }
  session_t *s = NULL;
  if (!get_session(env, argv[0], &s)) return NULL;
  int32_t r = -1;
  if (s != NULL) {
    ssize_t n = send(s->upstream_fd, data, len, MSG_DONTWAIT);
    if (n >= 0) {
      r = (int32_t)n;
      /* The group's totals leave it out: JavaScript counts what it sends itself. */
      s->packets_in++;
      s->bytes_in += (double)n;
      mark_active(s);
    } else {
      r = -errno;
    }
  }
  napi_create_int32(env, r, &result);
  return result;
}

/* close(id) → false when the session was closed already (or never was). */
static napi_value close_datagram_session(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  if (!get_args(env, info, 1, argv)) return NULL;
  session_t *s = NULL;
  if (!get_session(env, argv[0], &s)) return NULL;
  if (s != NULL) close_session(s);
  napi_get_boolean(env, s != NULL, &result);
  return result;
}

/* stats(id) → [packetsIn, bytesIn, packetsOut, bytesOut, idleMs], or undefined when closed. */
static napi_value session_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  if (!get_args(env, info, 1, argv)) return NULL;
  session_t *s = NULL;
  if (!get_session(env, argv[0], &s)) return NULL;
  if (s == NULL) {
    napi_get_undefined(env, &result);
    return result;
  }
  double values[5] = {s->packets_in, s->bytes_in, s->packets_out, s->bytes_out, (double)(uv_now(s->inst->loop) - s->last_active)};
  napi_create_array_with_length(env, 5, &result);
  for (uint32_t i = 0; i < 5; i++) {
    napi_value v;
    napi_create_double(env, values[i], &v);
    napi_set_element(env, result, i, v);
  }
  return result;
}

/*
 * takeActive(group) → Float64Array of [id, idleMs] pairs: the group's sessions that passed a
 * datagram since the last call, in the order they first did. JavaScript moves them up its idle order.
 */
static napi_value take_active(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  group_t *g = get_group(env, argv[0]);
  if (g == NULL) return NULL;
  instance_t *inst = g->inst;
  uint64_t now = uv_now(inst->loop);
  /* A slot may be listed twice (its session closed and a new one took it): listed_active dedupes. */
  double *pairs = malloc((size_t)(g->active_count + 1) * 2 * sizeof(double));
  if (pairs == NULL) {
    throw_errno(env, ENOMEM, "takeActive");
    return NULL;
  }
  size_t k = 0;
  for (uint32_t i = 0; i < g->active_count; i++) {
    session_t *s = inst->slots[g->active[i]];
    if (s == NULL || s->group != g || !s->listed_active) continue;
    s->listed_active = 0;
    pairs[k++] = session_id(s);
    pairs[k++] = (double)(now - s->last_active);
  }
  napi_value buffer, result;
  void *data = NULL;
  napi_create_arraybuffer(env, k * sizeof(double), &data, &buffer);
  if (k > 0) memcpy(data, pairs, k * sizeof(double));
  free(pairs);
  g->active_count = 0;
  napi_create_typedarray(env, napi_float64_array, k, buffer, 0, &result);
  return result;
}

/* sessionCount(group) → live sessions of the group. */
static napi_value session_count(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  if (!get_args(env, info, 1, argv)) return NULL;
  group_t *g = get_group(env, argv[0]);
  if (g == NULL) return NULL;
  napi_create_uint32(env, g->sessions, &result);
  return result;
}

static void instance_finalize(napi_env env, void *data, void *hint) {
  /* The loop is going away with the environment; sessions' sockets close with the process. */
  instance_t *inst = data;
  free(inst->buffers);
  free(inst->free_slots);
  free(inst->generations);
  /* Slots and sessions are left: their poll handles may still be on the loop being torn down. */
}

static napi_value init(napi_env env, napi_value exports) {
  instance_t *inst = calloc(1, sizeof *inst);
  if (inst == NULL) return NULL;
  inst->env = env;
  inst->buffers = malloc((size_t)BATCH * DATAGRAM_MAX);
  if (inst->buffers == NULL || napi_get_uv_event_loop(env, &inst->loop) != napi_ok) {
    free(inst->buffers);
    free(inst);
    throw_errno(env, ENOMEM, "kup_udp");
    return NULL;
  }
  napi_set_instance_data(env, inst, instance_finalize, NULL);
  napi_property_descriptor props[] = {
      {"createGroup", NULL, create_group, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, open_session, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, send_datagram, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, close_datagram_session, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, session_stats, NULL, NULL, NULL, napi_default, NULL},
      {"takeActive", NULL, take_active, NULL, NULL, NULL, napi_default, NULL},
      {"sessionCount", NULL, session_count, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
