/*
 * The upstream connect of the native TCP data path: a socket of the addon's own, connecting
 * without blocking, in the relays' epoll set (tcp_relay.c reports the connect's end). A dial is a
 * relay in its first stage; JavaScript attaches the client to it once it is connected.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <node_api.h>
#include "napi_args.h"
#include "tcp_relay.h"

/*
 * dial(group, ip, port, owner) → id: a socket of the addon's own connects to the endpoint, watched
 * in the relays' epoll set; its end comes to the group's callback as owner and '' (connected: call
 * attach) or the errno's name. Throws with the errno's name when the socket cannot be made or the
 * connect fails at once (nothing left open then).
 */
napi_value start_dial(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  group_t *g = get_group(env, argv[0]);
  if (g == NULL) return NULL;
  struct sockaddr_storage addr;
  socklen_t addr_len = parse_address(env, argv[1], argv[2], 1, &addr, "endpoint");
  if (addr_len == 0) return NULL;
  relay_t *r = new_relay(env, g);
  if (r == NULL) return NULL;
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = fd < 0 ? errno : 0;
  if (err == 0) {
    /* As every upstream of the proxy: small writes (a request) go out at once. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, addr_len) != 0 && errno != EINPROGRESS) err = errno;
  }
  if (err == 0) {
    r->upstream_fd = fd;
    r->owns_upstream = 1;
    r->stage = STAGE_CONNECTING;
    err = dial_watch(r);
  }
  if (err != 0) {
    if (fd >= 0) close(fd);
    free(r);
    throw_errno(env, err, "connect");
    return NULL;
  }
  return adopt(env, r, argv[3]);
}
