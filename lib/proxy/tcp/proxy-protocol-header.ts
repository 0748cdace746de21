import ipaddr from 'ipaddr.js';
import { Command, IPv4Address, IPv4ProxyAddress, IPv6Address, IPv6ProxyAddress, INETProtocol, Peer, TransportProtocol, V1ProxyProtocol, V2ProxyProtocol } from 'proxy-protocol-js';
import type { ProxyProtocolVersion } from '../../model/proxy-protocol-annotation.js';
import { clientIP } from '../client-ip.js';
import type { Portal } from './connection-policy.js';

/**
 * The PROXY protocol header (haproxy.org/download/2.9/doc/proxy-protocol.txt) for a connection
 * from source to destination, v1 (text line) or v2 (binary, command PROXY, STREAM). The encoding
 * is proxy-protocol-js's. Source and destination must be of one family (the protocol has no
 * mixed form): the first of `destinations` of the source's family is named, else `fallback`, the
 * address the connection was accepted on. IPv4-mapped IPv6 addresses (a dual-stack listener's view of an IPv4
 * client) are sent as IPv4.
 */
export function proxyProtocolHeader(version: ProxyProtocolVersion, source: Portal, destinations: readonly Portal[] | undefined, fallback: Portal): Buffer {
  const src = ipaddr.parse(clientIP(source.host));
  let dst: ipaddr.IPv4 | ipaddr.IPv6 | undefined;
  let dstPort = 0;
  for (const d of destinations ?? []) {
    const host = clientIP(d.host);
    if (!ipaddr.isValid(host)) continue;
    const parsed = ipaddr.parse(host);
    if (parsed.kind() !== src.kind()) continue;
    dst = parsed;
    dstPort = d.port;
    break;
  }
  if (dst === undefined) {
    dst = ipaddr.parse(clientIP(fallback.host));
    dstPort = fallback.port;
  }
  const v4 = src.kind() === 'ipv4';
  if (version === 'v1') {
    const line = new V1ProxyProtocol(v4 ? INETProtocol.TCP4 : INETProtocol.TCP6, new Peer(src.toString(), source.port), new Peer(dst.toString(), dstPort)).build();
    return Buffer.from(line, 'latin1');
  }
  const address = v4
    ? new IPv4ProxyAddress(IPv4Address.createFrom(src.toByteArray()), source.port, IPv4Address.createFrom(dst.toByteArray()), dstPort)
    : new IPv6ProxyAddress(IPv6Address.createFrom(src.toByteArray()), source.port, IPv6Address.createFrom(dst.toByteArray()), dstPort);
  const bytes = new V2ProxyProtocol(Command.PROXY, TransportProtocol.STREAM, address).build();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
