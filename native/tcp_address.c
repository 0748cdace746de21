/*
 * Socket addresses of the native TCP data path, to and from JavaScript: an IP literal and a port
 * into a sockaddr (an endpoint to dial, an address to listen on), and a sockaddr out as the IP and
 * port Node would report for it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <node_api.h>
#include "napi_args.h"
#include "tcp_relay.h"

socklen_t parse_address(napi_env env, napi_value ip_value, napi_value port_value, int32_t min_port, struct sockaddr_storage *addr, const char *what) {
  char ip[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t ip_len = 0;
  int32_t port = -1;
  memset(addr, 0, sizeof *addr);
  socklen_t addr_len = 0;
  if (napi_get_value_string_utf8(env, ip_value, ip, sizeof ip, &ip_len) == napi_ok && ip_len < sizeof ip - 1) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      addr_len = sizeof *v4;
    } else {
      /* A link-local address may name its interface: fe80::1%eth0 (or %2). */
      char *zone = strchr(ip, '%');
      if (zone != NULL) *zone++ = '\0';
      if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        addr_len = sizeof *v6;
        if (zone != NULL) {
          char *end = NULL;
          unsigned long index = strtoul(zone, &end, 10);
          v6->sin6_scope_id = *zone != '\0' && *end == '\0' ? (uint32_t)index : if_nametoindex(zone);
          if (v6->sin6_scope_id == 0) addr_len = 0;
        }
      }
    }
  }
  char message[96];
  if (addr_len == 0) {
    snprintf(message, sizeof message, "%s ip must be an IPv4 or IPv6 address", what);
    throw_code(env, "ERR_INVALID_ARG_VALUE", message);
    return 0;
  }
  if (napi_get_value_int32(env, port_value, &port) != napi_ok || port < min_port || port > 65535) {
    snprintf(message, sizeof message, "%s port must be an integer from %d to 65535", what, min_port);
    throw_code(env, "ERR_INVALID_ARG_VALUE", message);
    return 0;
  }
  if (addr->ss_family == AF_INET) ((struct sockaddr_in *)addr)->sin_port = htons((uint16_t)port);
  else ((struct sockaddr_in6 *)addr)->sin6_port = htons((uint16_t)port);
  return addr_len;
}

int address_values(napi_env env, const struct sockaddr_storage *addr, napi_value *ip, napi_value *port) {
  char text[INET6_ADDRSTRLEN];
  uint16_t p;
  if (addr->ss_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)addr;
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    p = ntohs(v4->sin_port);
  } else if (addr->ss_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)addr;
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    p = ntohs(v6->sin6_port);
  } else {
    return 0;
  }
  napi_create_string_latin1(env, text, NAPI_AUTO_LENGTH, ip);
  napi_create_uint32(env, p, port);
  return 1;
}

/* [ip, port] of the socket's peer (getpeername) or its own (getsockname); undefined when fd is gone or negative. */
napi_value address_pair(napi_env env, int fd, int peer) {
  struct sockaddr_storage addr;
  socklen_t len = sizeof addr;
  napi_value ip, port, result;
  if (fd < 0 || (peer ? getpeername(fd, (struct sockaddr *)&addr, &len) : getsockname(fd, (struct sockaddr *)&addr, &len)) != 0 || !address_values(env, &addr, &ip, &port)) {
    napi_get_undefined(env, &result);
    return result;
  }
  napi_create_array_with_length(env, 2, &result);
  napi_set_element(env, result, 0, ip);
  napi_set_element(env, result, 1, port);
  return result;
}

/* address(fd, peer: boolean) → address_pair() of that socket. */
napi_value socket_address(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t fd = -1;
  bool peer = false;
  napi_get_value_int32(env, argv[0], &fd);
  napi_get_value_bool(env, argv[1], &peer);
  return address_pair(env, fd, peer);
}
