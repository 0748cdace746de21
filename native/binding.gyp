{
  "targets": [
    {
      "target_name": "kup_udp",
      "sources": ["kup_udp.c", "udp_relay.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    },
    {
      "target_name": "kup_tcp",
      "sources": ["kup_tcp.c", "tcp_relay.c", "tcp_dial.c", "tcp_accept.c", "tcp_address.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
