import net from 'node:net';

/** A parsed --service-ip-pool: IPv4 addresses `first` .. `first + size - 1` (as unsigned 32-bit numbers). */
export interface ServiceIPPoolRange {
  /** The CIDR as given, normalised (`127.1.0.0/16`). */
  readonly cidr: string;
  readonly first: number;
  readonly size: number;
}

/** Linux routes all of 127.0.0.0/8 to lo: a listener binds any of it with no root and no address to add. */
const LOOPBACK_NET = 0x7f000000;

/**
 * Parses a --service-ip-pool CIDR, or says in one phrase what is wrong with it. Only IPv4 inside
 * 127.0.0.0/8 is taken: the point of the pool is addresses that need neither root nor an address
 * added to an interface, and only 127/8 is such a block (IPv6 has the one address ::1). Any other
 * range would make every listener fail with EADDRNOTAVAIL, so it is refused rather than warned
 * about. The network and broadcast addresses of pools of /30 and larger are left out, as is
 * 127.0.0.1, where the machine's own programs listen.
 */
export function parseServiceIPPool(text: string): ServiceIPPoolRange | string {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text.trim());
  if (!m || net.isIPv4(m[1]!) === false) {
    if (/:/.test(text)) return `"${text}" is IPv6: only IPv4 loopback ranges (inside 127.0.0.0/8) can be listened on without root`;
    return `"${text}" is not an IPv4 CIDR (example: 127.1.0.0/16)`;
  }
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 32) return `"${text}": the prefix length must be 8 to 32`;
  const base = ipv4ToNumber(m[1]!);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  if ((base & 0xff000000) >>> 0 !== LOOPBACK_NET) {
    return `"${text}" is not inside 127.0.0.0/8: only loopback addresses need no root and no address assignment (use 127.1.0.0/16, say)`;
  }
  if ((base & mask) >>> 0 !== base) return `"${text}" has host bits set: did you mean ${numberToIPv4((base & mask) >>> 0)}/${prefix}?`;
  return { cidr: `${numberToIPv4(base)}/${prefix}`, first: base, size: 2 ** (32 - prefix) };
}

export function ipv4ToNumber(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

export function numberToIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}
