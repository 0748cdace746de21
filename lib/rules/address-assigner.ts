import { RulesError } from '../errors.js';
import { logger } from '../log.js';
import { parseIP } from '../model/ip-address.js';
import type { CommandRunner } from './command-runner.js';
import { requireSystemBinary, runChecked, spawnRunner } from './command-runner.js';
import type { PrivilegeProbe } from './privileges.js';
import { requireNetAdmin } from './privileges.js';
import { DEFAULT_STATE_DIR, hostPrefix, ipBatch, isMissingAddress, netnsId, removeRecordedAddresses, stateFile, writeAddressState } from './address-state.js';
import { SerialLifecycle } from './serial-lifecycle.js';

export interface AddressAssignerOptions extends PrivilegeProbe {
  /** Runs `ip` & co.; default: spawn directly. Tests pass a `netnsRunner`. */
  readonly runner?: CommandRunner;
  /** The interface the addresses go on (--assign-service-ips=IFACE); default `lo`. */
  readonly interface?: string;
  /** Where the record of added addresses is kept; default /run/kube-userspace-proxy. */
  readonly stateDir?: string;
}

const log = logger('address-assigner');

/**
 * `--redirect none --assign-service-ips[=IFACE]`: puts every ClusterIP, external IP and LB IP on an
 * interface of the node as a host address (/32 or /128), so that listeners bound to portal IPs receive
 * their traffic without any NAT (the winuserspace approach). Each sync is ONE `ip -batch` run with only
 * the differences; addresses that were on the interface before start() are never touched (not ours).
 *
 * Crash safety: every address is recorded in the state file (see address-state.ts) BEFORE it is added
 * and dropped from it only after it is removed, so a restart (start()) or cleanupLeftovers() finds and
 * removes whatever a killed run left.
 */
export class AddressAssigner {
  readonly #runner: CommandRunner;
  readonly #options: AddressAssignerOptions;
  readonly #interface: string;
  readonly #stateDir: string;
  #file: string | undefined;
  /** Addresses on the interface that we did not add (present at start): left alone. */
  #foreign = new Set<string>();
  /** Addresses we added and have not removed. */
  #current = new Set<string>();
  readonly #lifecycle = new SerialLifecycle('address assigner');

  constructor(options: AddressAssignerOptions = {}) {
    this.#options = options;
    this.#runner = options.runner ?? spawnRunner();
    this.#interface = options.interface ?? 'lo';
    this.#stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
    if (!/^[A-Za-z0-9_.@-]{1,15}$/.test(this.#interface)) {
      throw new RulesError(`invalid interface name ${JSON.stringify(this.#interface)}`);
    }
  }

  get interface(): string {
    return this.#interface;
  }

  /** The addresses currently assigned by this instance. */
  get assigned(): readonly string[] {
    return [...this.#current].sort();
  }

  start(): Promise<void> {
    return this.#lifecycle.start(async () => {
      requireNetAdmin('--assign-service-ips', 'leave out --assign-service-ips', this.#options);
      this.#file = stateFile(this.#stateDir, await netnsId(this.#runner));
      const removed = await removeRecordedAddresses(this.#runner, this.#stateDir);
      if (removed.length) log.warn('removed service addresses left by an earlier run', { removed });
      this.#foreign = new Set(await this.#listInterface());
      await writeAddressState(this.#file, { interface: this.#interface, addresses: [] });
      log.info('assigning service IPs', { interface: this.#interface, stateFile: this.#file });
    });
  }

  /** Makes the assigned addresses exactly `ips` (less those that were on the interface before start()). */
  sync(ips: readonly string[]): Promise<void> {
    return this.#lifecycle.sync(async () => {
      const wanted = new Set<string>();
      for (const text of ips) {
        const ip = parseIP(text);
        if (!ip) throw new RulesError(`invalid service IP ${JSON.stringify(text)}`);
        if (!this.#foreign.has(ip.address)) wanted.add(ip.address);
      }
      const adds = [...wanted].filter((a) => !this.#current.has(a)).sort();
      const dels = [...this.#current].filter((a) => !wanted.has(a)).sort();
      if (adds.length + dels.length === 0) return;
      // Record first: if we die between the two writes, the record lists a superset, which is safe.
      await writeAddressState(this.#file!, { interface: this.#interface, addresses: [...this.#current, ...adds] });
      const lines = [
        ...dels.map((a) => `address del ${hostPrefix(a)} dev ${this.#interface}`),
        // `replace` is `add` that does not fail on an address already there. IPv6 addresses skip
        // duplicate address detection, which would keep them "tentative" (unusable) for a second or so.
        ...adds.map((a) => `address replace ${hostPrefix(a)} dev ${this.#interface}${a.includes(':') ? ' nodad' : ''}`),
      ];
      const { failed } = await ipBatch(this.#runner, lines);
      // A del that found nothing got what it wanted; every other failure is real.
      const real = failed.filter((f) => !(f.line.startsWith('address del') && isMissingAddress(f.error)));
      const stuck = new Set(real.map((f) => f.line));
      dels.forEach((a, i) => stuck.has(lines[i]!) || this.#current.delete(a));
      adds.forEach((a, i) => stuck.has(lines[dels.length + i]!) || this.#current.add(a));
      await writeAddressState(this.#file!, { interface: this.#interface, addresses: [...this.#current] });
      log.debug('synced service addresses', { added: adds.length, removed: dels.length, assigned: this.#current.size });
      if (real.length) {
        throw new RulesError(`could not assign service addresses on ${this.#interface}: ${real.map((f) => `${f.line}: ${f.error}`).join('; ')}`);
      }
    });
  }

  /** Removes every address this instance (or a crashed predecessor in this namespace) added. Idempotent. */
  close(): Promise<void> {
    return this.#lifecycle.close(() => [
      async () => {
        const removed = await removeRecordedAddresses(this.#runner, this.#stateDir);
        this.#current.clear();
        if (removed.length) log.info('removed service addresses', { removed: removed.length });
      },
    ]);
  }

  /** The addresses on our interface now (`ip -o addr show dev IFACE`). */
  async #listInterface(): Promise<string[]> {
    const ip = await requireSystemBinary('ip');
    const result = await runChecked(this.#runner, [ip, '-o', 'address', 'show', 'dev', this.#interface], undefined, `ip address show dev ${this.#interface}`);
    return [...result.stdout.matchAll(/\binet6? ([0-9a-fA-F.:]+)\//g)].map((m) => parseIP(m[1]!)?.address ?? m[1]!);
  }
}
