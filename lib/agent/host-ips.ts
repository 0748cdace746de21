import { readFileSync } from 'node:fs';
import os from 'node:os';
import ipaddr from 'ipaddr.js';

function isAny(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::';
}

/**
 * The addresses node-originated portal traffic is DNATed to. REDIRECT of locally generated packets
 * would make replies come from another address, so the legacy proxier DNATed to a real host IP:
 * the bind address when it is specific, else the primary address of the interface holding the
 * default route (as its ChooseHostInterface did). That choice matters for UDP: replies leave
 * through the routing table's choice of source, and a DNAT to another interface's address would
 * not be un-NATed, so the client's connected socket would drop them. Falls back to the first
 * non-internal address; IPv6 link-local addresses cannot be DNAT targets.
 */
export function hostIPs(bindAddress: string): { v4: string | undefined; v6: string | undefined } {
  let v4: string | undefined;
  let v6: string | undefined;
  if (!isAny(bindAddress)) {
    if (bindAddress.includes(':')) v6 = bindAddress;
    else v4 = bindAddress;
  }
  const interfaces = os.networkInterfaces();
  const pick = (name: string | undefined, family: 'IPv4' | 'IPv6'): string | undefined =>
    name === undefined ? undefined : interfaces[name]?.find((a) => a.family === family && !a.address.toLowerCase().startsWith('fe80:'))?.address;
  v4 ??= pick(defaultRouteInterface('/proc/net/route', 4), 'IPv4');
  v6 ??= pick(defaultRouteInterface('/proc/net/ipv6_route', 6), 'IPv6');
  for (const list of Object.values(interfaces)) {
    for (const a of list ?? []) {
      if (a.internal) continue;
      if (a.family === 'IPv4') v4 ??= a.address;
      else if (!a.address.toLowerCase().startsWith('fe80:')) v6 ??= a.address;
    }
  }
  return { v4, v6 };
}

/** The interface of the default route, from the kernel's routing table (Linux); undefined elsewhere. */
function defaultRouteInterface(file: string, family: 4 | 6): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // /proc/net/route: Iface Destination Gateway Flags ... Mask; ipv6_route: dest prefixlen src srclen gw metric refcnt use flags iface
    if (family === 4 && f.length >= 8 && f[1] === '00000000' && f[7] === '00000000') return f[0];
    if (family === 6 && f.length >= 10 && /^0{32}$/.test(f[0] ?? '') && f[1] === '00' && f[9] !== 'lo') return f[9];
  }
  return undefined;
}

/** This machine's addresses inside any of the CIDRs (--nodeport-addresses). */
export function addressesInCidrs(cidrs: readonly string[]): string[] {
  const ranges = cidrs.map((c) => ipaddr.parseCIDR(c));
  const out: string[] = [];
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) {
      const addr = ipaddr.process(a.address);
      if (ranges.some(([net, bits]) => net.kind() === addr.kind() && addr.match([net, bits]))) out.push(a.address);
    }
  }
  return [...new Set(out)];
}
