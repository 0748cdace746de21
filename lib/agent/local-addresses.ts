import os from 'node:os';

/**
 * The IP addresses of this machine's interfaces. A portal address among them can be listened on
 * directly; all of 127.0.0.0/8 counts as local, because Linux routes the whole block to lo.
 */
export class LocalAddresses {
  #addresses = new Set<string>();
  #ipv6 = false;

  constructor() {
    this.refresh();
  }

  /** Re-reads the interfaces (addresses come and go); called once per sync. */
  refresh(): void {
    const set = new Set<string>();
    let ipv6 = false;
    for (const list of Object.values(os.networkInterfaces())) {
      for (const a of list ?? []) {
        set.add(a.address);
        if (a.family === 'IPv6') ipv6 = true;
      }
    }
    this.#addresses = set;
    this.#ipv6 = ipv6;
  }

  /** Whether any interface has an IPv6 address (none when the kernel has IPv6 disabled). */
  get ipv6(): boolean {
    return this.#ipv6;
  }

  has(ip: string): boolean {
    return this.#addresses.has(ip) || ip.startsWith('127.') || ip === '::1';
  }
}
