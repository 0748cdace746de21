import ipaddr from 'ipaddr.js';

/**
 * The PTR owner name of an address: `4.3.2.1.in-addr.arpa` for 1.2.3.4, and for IPv6 the 32
 * nibbles of the full address in reverse order under `ip6.arpa` (the DNS specification, 2.3.3).
 */
export function reverseName(ip: string): string {
  const bytes = ipaddr.parse(ip).toByteArray();
  if (bytes.length === 4) return `${bytes.reverse().join('.')}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (const b of bytes) nibbles.push((b >> 4).toString(16), (b & 0xf).toString(16));
  return `${nibbles.reverse().join('.')}.ip6.arpa`;
}

/** Whether a (lowercase) name lies in one of the two reverse-mapping zones. */
export function isReverseName(name: string): boolean {
  return name.endsWith('.in-addr.arpa') || name.endsWith('.ip6.arpa') || name === 'in-addr.arpa' || name === 'ip6.arpa';
}

/**
 * The label a headless service's endpoint without a `hostname` is known by. The DNS specification
 * asks for "a unique, system-assigned identifier"; CoreDNS's choice, the address with dashes for its
 * separators, is what users of headless services already see (`10-1-0-5.db.shop.svc.cluster.local`).
 * IPv6 is written out in full so that the label never starts or ends with a dash.
 */
export function endpointLabel(ip: string): string {
  const addr = ipaddr.parse(ip);
  return addr.kind() === 'ipv4' ? ip.replaceAll('.', '-') : (addr as ipaddr.IPv6).toNormalizedString().replaceAll(':', '-');
}
