/** An inclusive range of ports, as kube-proxy's --proxy-port-range: `B-E`, `B+N` or a single port. */
export interface PortRange {
  readonly base: number;
  /** Number of ports in the range (at least 1). */
  readonly size: number;
}

/**
 * Parses --proxy-port-range. Returns undefined for "" (the kernel chooses), a PortRange, or an
 * error string saying what is wrong.
 */
export function parsePortRange(text: string): PortRange | undefined | string {
  const s = text.trim();
  if (s === '') return undefined;
  let m = /^(\d+)-(\d+)$/.exec(s);
  if (m) {
    const b = Number(m[1]);
    const e = Number(m[2]);
    if (!validPort(b) || !validPort(e)) return `ports must be 1-65535, got "${s}"`;
    if (e < b) return `end port ${e} is below begin port ${b}`;
    return { base: b, size: e - b + 1 };
  }
  m = /^(\d+)\+(\d+)$/.exec(s);
  if (m) {
    const b = Number(m[1]);
    const n = Number(m[2]);
    if (!validPort(b) || !validPort(b + n)) return `ports must be 1-65535, got "${s}"`;
    return { base: b, size: n + 1 };
  }
  m = /^(\d+)$/.exec(s);
  if (m) {
    const p = Number(m[1]);
    if (!validPort(p)) return `ports must be 1-65535, got "${s}"`;
    return { base: p, size: 1 };
  }
  return `expected "", B-E, B+N or a single port, got "${s}"`;
}

export function formatPortRange(r: PortRange | undefined): string {
  if (r === undefined) return '';
  return r.size === 1 ? String(r.base) : `${r.base}-${r.base + r.size - 1}`;
}

function validPort(p: number): boolean {
  return Number.isInteger(p) && p >= 1 && p <= 65535;
}
