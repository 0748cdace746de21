/** Counters of one service port's data path. Plain fields: they are bumped on the per-connection path. */
export class ProxyStats {
  /** TCP connections currently proxied, or live UDP sessions. */
  active = 0;
  /** TCP connections accepted, or UDP sessions created, since start. */
  total = 0;
  /** Bytes from clients to endpoints. */
  bytesIn = 0;
  /** Bytes from endpoints to clients. */
  bytesOut = 0;
  /** Connections (or datagrams) turned away because the port had no endpoint. */
  noEndpointRejections = 0;
  /** Dial attempts that failed (refused, timed out, unreachable). */
  dialFailures = 0;
  /** Dial attempts after the first for one connection. */
  dialRetries = 0;
  /** Connections given up after every dial attempt failed. */
  dialGiveUps = 0;
  /** UDP sessions closed to stay within --udp-max-sessions. */
  udpEvictions = 0;
}
