/* What the parts of the native UDP data path share: its state, and the calls between them. */
#ifndef KUP_UDP_SESSION_H
#define KUP_UDP_SESSION_H

#include <stdint.h>
#include <sys/socket.h>
#include <node_api.h>
#include <uv.h>

#define BATCH 32
#define DATAGRAM_MAX 65535
#define SLOT_BITS 24
#define SLOT_MAX (1u << SLOT_BITS)

/* What JavaScript is told (the first argument of a group's callback). */
enum event_kind { EVENT_UPSTREAM_ERROR = 1, EVENT_REPLY_ERROR = 2, EVENT_STRAY = 3 };

/* Counters a group keeps in JavaScript's memory (a Float64Array), so reading them costs no call. */
enum total { TOTAL_BYTES_IN, TOTAL_BYTES_OUT, TOTAL_PACKETS_IN, TOTAL_PACKETS_OUT, TOTAL_COUNT };

struct instance;

typedef struct group {
  struct instance *inst;
  napi_ref callback;
  napi_ref totals_ref;
  double *totals;
  napi_async_context async;
  uint32_t sessions;
  uint32_t max_sessions;
  int closed;
  /* Sessions with a datagram since JavaScript last asked (take_active), as slots. */
  uint32_t *active;
  uint32_t active_count;
  uint32_t active_cap;
} group_t;

typedef struct session {
  group_t *group;
  struct instance *inst;
  uint32_t slot;
  uint32_t generation;
  int reply_fd;
  int upstream_fd;
  uv_poll_t reply_poll;
  uv_poll_t upstream_poll;
  int open_polls;
  int closing;
  struct sockaddr_storage client;
  socklen_t client_len;
  double packets_in, bytes_in, packets_out, bytes_out;
  uint64_t last_active;
  /* On the group's list of sessions active since JavaScript last asked. */
  int listed_active;
} session_t;

typedef struct instance {
  uv_loop_t *loop;
  napi_env env;
  /* One batch of buffers, used by one readable event at a time (the loop is single-threaded). */
  unsigned char *buffers;
  struct mmsghdr msgs[BATCH];
  struct iovec iovs[BATCH];
  struct sockaddr_storage sources[BATCH];
  /* Sessions by slot; a slot's generation tells a stale id from the session now in it. */
  session_t **slots;
  uint32_t *generations;
  uint32_t slot_count;
  uint32_t *free_slots;
  uint32_t free_count;
} instance_t;

/* udp_relay.c: addresses, the data path and the life of a session. */
const char *errno_code(int err);
int make_address(const char *ip, uint16_t port, int family, struct sockaddr_storage *out, socklen_t *len);
int same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
double session_id(const session_t *s);
session_t *find_session(instance_t *inst, double id);
void mark_active(session_t *s);
void on_reply_readable(uv_poll_t *handle, int status, int events);
void on_upstream_readable(uv_poll_t *handle, int status, int events);
void free_group(napi_env env, group_t *g);
void close_session(session_t *s);
int grow_slots(instance_t *inst);
int open_socket(int family, int *out);

/* kup_udp.c: the one way back into JavaScript. */
void call_js(group_t *g, int kind, session_t *s, const char *code, const unsigned char *data, size_t len, const struct sockaddr_storage *from);

#endif
