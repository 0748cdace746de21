import ipaddr from 'ipaddr.js';

export type IPFamily = 'IPv4' | 'IPv6';

export interface ParsedIP {
  readonly family: IPFamily;
  /** Dotted-quad IPv4 as given, or IPv6 in RFC 5952 form, so that equal addresses compare equal as strings. */
  readonly address: string;
}

/**
 * Parses an IP the way Kubernetes validation accepts one. ipaddr.js alone also takes forms such as
 * `10.1` or `0x0a.0.0.1` that net.connect would reinterpret, and IPv6 zones (`fe80::1%eth0`) that are
 * meaningless in a cluster, so both are refused here.
 */
export function parseIP(text: string): ParsedIP | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return { family: 'IPv4', address: text };
  if (!text.includes('%') && ipaddr.IPv6.isValid(text)) {
    return { family: 'IPv6', address: ipaddr.IPv6.parse(text).toRFC5952String() };
  }
  return undefined;
}
