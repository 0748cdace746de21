import os from 'node:os';

/**
 * The IP addresses of this machine's interfaces. A portal address among them can be listened on
 * directly; all of 127.0.0.0/8 counts as local, because Linux routes the whole block to lo.
 */
export class LocalAddresses {
  #addresses = new Set<string>();

  constructor() {
    this.refresh();
  }

  /** Re-reads the interfaces (addresses come and go); called once per sync. */
  refresh(): void {
    const set = new Set<string>();
    for (const list of Object.values(os.networkInterfaces())) {
      for (const a of list ?? []) set.add(a.address);
    }
    this.#addresses = set;
  }

  has(ip: string): boolean {
    return this.#addresses.has(ip) || ip.startsWith('127.') || ip === '::1';
  }
}
