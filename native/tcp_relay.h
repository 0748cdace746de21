/* What the parts of the native TCP data path share: its state, and the calls between them. */
#ifndef KUP_TCP_RELAY_H
#define KUP_TCP_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <node_api.h>
#include <uv.h>

/* One read: as much as the kernel has for us in one call, up to this. Shared by every relay. */
#define SCRATCH_SIZE (256 * 1024)
/* Readiness events taken from the relays' epoll set per wakeup of the loop. */
#define EVENT_BATCH 128
/* A direction whose read filled the shared buffer is a bulk flow: it moves on through a pipe with
 * splice() from then on, which the kernel does without copying the bytes through this process. */
#define PIPE_SIZE (256 * 1024)
/* Empty pipes kept for the next bulk flow (each is two descriptors). */
#define PIPE_POOL_MAX 32
#define SLOT_BITS 24
#define SLOT_MAX (1u << SLOT_BITS)

/* Counters a group keeps in JavaScript's memory (a Float64Array), so reading them costs no call. */
enum total { TOTAL_BYTES_IN, TOTAL_BYTES_OUT, TOTAL_COUNT };

struct instance;

typedef struct group {
  struct instance *inst;
  napi_ref callback;
  napi_ref totals_ref;
  double *totals;
  napi_async_context async;
  uint32_t relays;
  /* Calls to its callback under way: it is not freed during one. */
  uint32_t reporting;
  int closed;
} group_t;

/* One direction of a connection: what is read from src is written to dst. */
typedef struct direction {
  int src;
  int dst;
  /* Bytes read but not yet taken by dst (it was full): src is not read until they are. */
  unsigned char *pending;
  size_t pending_len;
  size_t pending_off;
  /* The bulk flow's pipe (-1: none yet), and the bytes in it that dst has not taken yet. */
  int pipe_r;
  int pipe_w;
  size_t in_pipe;
  /* src sent its FIN: nothing more comes from it. */
  int src_ended;
  /* dst is to get a FIN once nothing is pending for it. */
  int ending;
  /* dst's FIN is issued. */
  int shut;
  /* What src sends from now on is dropped (the max connection age ended the other side). */
  int drop;
  /* Which group total counts this direction's bytes. */
  int total;
} direction_t;

typedef struct relay {
  group_t *group;
  struct instance *inst;
  uint32_t slot;
  uint32_t generation;
  napi_ref owner;
  int client_fd;
  int upstream_fd;
  /* The epoll events each descriptor is registered for (-1: not in the set). */
  int client_events;
  int upstream_events;
  direction_t up;
  direction_t down;
  /* Each side's epoll events (client, upstream) of the wakeup being handled; 0 outside it. */
  uint32_t batch_events[2];
  /* Bumped on every byte moved either way; JavaScript compares it between idle sweeps. */
  uint32_t activity;
  int finished;
  /* enum stage: connecting to the endpoint, connected and waiting for JavaScript, or relaying. */
  int stage;
  /* The addon made the upstream socket (dial): it closes it itself at the end, JavaScript never sees it. */
  int owns_upstream;
  /* The client was accepted by the addon (tcp_accept.c): closed here at the end too. */
  int owns_client;
  /* How the connect ended, for JavaScript: 0, or the errno it failed with. */
  int dial_error;
  /* What the end asks of the descriptors (enum finish_flags), until JavaScript is told. */
  int finish_flags;
} relay_t;

/* Ended relays waiting to be reported: at most one per event of a wakeup, and a few more that end outside one. */
#define DONE_MAX (EVENT_BATCH + 16)

typedef struct instance {
  uv_loop_t *loop;
  napi_env env;
  /* The relays' own epoll set, watched by the loop through one uv_poll_t. */
  int epoll_fd;
  uv_poll_t epoll_poll;
  int polling;
  unsigned char *scratch;
  int pipe_pool[PIPE_POOL_MAX][2];
  int pipe_pool_count;
  struct epoll_event events[EVENT_BATCH];
  relay_t **slots;
  uint32_t *generations;
  uint32_t slot_count;
  uint32_t *free_slots;
  uint32_t free_count;
  /* Inside on_epoll_readable: ended relays are reported together at its end, one call per group. */
  int in_wakeup;
  relay_t *done[DONE_MAX];
  uint32_t done_count;
  /* A report was made (a call into JavaScript) since the batch began: see on_epoll_readable. */
  int reported;
  /* tcp_accept.c: the listeners (by slot, as the relays), where their batches go, and the
   * listeners' events of the wakeup, accepted from once the relays' ends are reported. */
  struct listener **listeners;
  uint32_t *listener_generations;
  uint32_t listener_count;
  uint32_t *listener_free;
  uint32_t listener_free_count;
  napi_ref accept_callback;
  napi_async_context accept_async;
  int reserve_fd;
  uint64_t ready[EVENT_BATCH];
  uint32_t ready_count;
} instance_t;

/* What a relay's end tells JavaScript: the descriptors to reset (SO_LINGER 0) rather than close. */
enum finish_flags { RESET_CLIENT = 1, RESET_UPSTREAM = 2 };

/* A relay's stage: a dial's connect in flight; connected, until JavaScript attaches the client; relaying. */
enum stage { STAGE_RELAYING, STAGE_CONNECTING, STAGE_CONNECTED };

/* tcp_relay.c: the data path and the life of a relay. */
double relay_id(const relay_t *r);
/* Whether bytes wait for d's destination to take them (in its buffer or its pipe). */
int has_pending(const direction_t *d);
relay_t *find_relay(instance_t *inst, double id);
int grow_slots(instance_t *inst);
/* Starts relaying; 0 or an errno (nothing registered then). header: sent to the upstream first. */
int relay_start(relay_t *r, const unsigned char *header, size_t header_len);
/* Registers a dial's upstream socket, its connect just issued, for the connect's end; 0 or an errno. */
int dial_watch(relay_t *r);
/* JavaScript's end of one direction (FIN to its destination after what is pending); drop: later bytes from its source are dropped. */
void relay_end(relay_t *r, direction_t *d, int drop);
/* Stops the relay without calling JavaScript (JavaScript closes the client; an upstream the addon
 * made is closed here, reset if it was relaying). */
void relay_stop(relay_t *r);
void on_epoll_readable(uv_poll_t *handle, int status, int events);
void free_group(napi_env env, group_t *g);

/* What listen() is asked for. */
enum listen_flags { LISTEN_IPV6_ONLY = 1, LISTEN_REUSE_PORT = 2 };

/* tcp_accept.c: a listener's event of a wakeup is kept (1; 0: not a listener's), and accept_ready
 * then accepts from each listener, one call into JavaScript per listener. */
int listener_event(instance_t *inst, uint64_t data);
void accept_ready(instance_t *inst);
napi_value start_listen(napi_env env, napi_callback_info info);
napi_value stop_listen(napi_env env, napi_callback_info info);
napi_value listener_address(napi_env env, napi_callback_info info);
napi_value want_peers(napi_env env, napi_callback_info info);
napi_value accept_with(napi_env env, napi_callback_info info);
napi_value close_client(napi_env env, napi_callback_info info);

/* tcp_dial.c */
napi_value start_dial(napi_env env, napi_callback_info info);

/* tcp_address.c: ip and port into addr (its length; 0 with an error thrown naming `what`), and back. */
socklen_t parse_address(napi_env env, napi_value ip, napi_value port, int32_t min_port, struct sockaddr_storage *addr, const char *what);
int address_values(napi_env env, const struct sockaddr_storage *addr, napi_value *ip, napi_value *port);
napi_value address_pair(napi_env env, int fd, int peer);
napi_value socket_address(napi_env env, napi_callback_info info);

/* kup_tcp.c: what the functions JavaScript calls share. */
void throw_errno(napi_env env, int err, const char *what);
instance_t *instance_of(napi_env env);
group_t *get_group(napi_env env, napi_value v);
/* A relay of g in a free slot, not yet counted (see adopt); NULL with an exception thrown. */
relay_t *new_relay(napi_env env, group_t *g);
/* The relay takes its slot and is counted; its id for JavaScript. */
napi_value adopt(napi_env env, relay_t *r, napi_value owner);

/* kup_tcp.c: the one way back into JavaScript: onFinished([owner, flags, owner, flags...]) once per
 * group with ended relays (flags) and ended dials (a string: '' connected, or the errno's name). */
void call_finished(group_t *g, napi_value list);

#endif
