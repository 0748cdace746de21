import { createRequire } from 'node:module';
import type * as IpAddr from 'ipaddr.js';

/**
 * ipaddr.js, loaded on first use: the manifest parse thread reads dotted quads without it, and
 * loading it (a CommonJS module, scanned for its exports) took 15-25 ms of that thread's start,
 * which start-up waits for.
 */
let ipaddrModule: typeof IpAddr | undefined;
function ipaddr(): typeof IpAddr {
  return (ipaddrModule ??= createRequire(import.meta.url)('ipaddr.js') as typeof IpAddr);
}

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
  if (isDottedQuad(text) || ipaddr().IPv4.isValidFourPartDecimal(text)) return { family: 'IPv4', address: text };
  if (!text.includes('%') && ipaddr().IPv6.isValid(text)) {
    return { family: 'IPv6', address: ipaddr().IPv6.parse(text).toRFC5952String() };
  }
  return undefined;
}

/**
 * The common case of ipaddr.IPv4.isValidFourPartDecimal, which tries every IPv4 form before it
 * checks for this one (a fifth of reading an EndpointSlice): four decimal parts of at most 255,
 * without leading zeros. Anything else is left to ipaddr.js. One pass over the characters: the
 * pattern it replaces, with its four captures, took as long again as the rest of the check.
 */
function isDottedQuad(text: string): boolean {
  const n = text.length;
  if (n < 7 || n > 15) return false;
  let parts = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= n; i++) {
    // The end of the text ends the last part as a dot would.
    const c = i === n ? DOT : text.charCodeAt(i);
    if (c === DOT) {
      if (digits === 0 || value > 255 || ++parts > 4) return false;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      // A leading zero (`01`), or a fourth digit.
      if ((digits === 1 && value === 0) || digits === 3) return false;
      value = value * 10 + (c - 0x30);
      digits++;
    } else return false;
  }
  return parts === 4;
}

const DOT = 0x2e;
