import { logger } from '../log.js';
import type { IPFamily } from '../model/ip-address.js';
import type { CommandRunner } from './command-runner.js';
import { resolveSystemBinary } from './command-runner.js';
import type { FamilyPlan } from './rule-plan.js';

/**
 * UDP conntrack clearing. A UDP "connection" to a portal lives in the conntrack table with its NAT
 * decision (portal → proxy port) until it has been idle for nf_conntrack_udp_timeout (30 s, 120 s once
 * it has seen replies). A client that keeps sending — a DNS resolver reusing its source port — would
 * keep hitting the old decision after its portal went away or moved to another proxy port, and its
 * packets would go to a closed port. So after a sync removes or changes a UDP portal, its entries are
 * deleted, as the legacy proxier did (`conntrack -D --orig-dst IP -p udp`). TCP needs nothing: a new
 * connection gets a new entry.
 */

/** UDP traffic whose NAT decision a sync has invalidated: to `ip:port` or, with no ip, to a node port. */
export interface StaleUdpFlow {
  readonly family: IPFamily;
  /** The portal IP; undefined for a node port (every local address). */
  readonly ip: string | undefined;
  readonly port: number;
}

const log = logger('conntrack');

/** The UDP flows of `before` that `after` no longer sends to the same place. */
export function staleUdpFlows(before: FamilyPlan | undefined, after: FamilyPlan): StaleUdpFlow[] {
  if (!before) return [];
  const now = udpDestinations(after);
  const stale: StaleUdpFlow[] = [];
  for (const [key, where] of udpDestinations(before)) {
    if (now.get(key) === where) continue;
    const [ip, port] = key.split(' ');
    stale.push({ family: before.family, ip: ip === '*' ? undefined : ip, port: Number(port) });
  }
  return stale;
}

/** `ip port` (or `* nodePort`) → where UDP packets to it go, for every UDP portal and node port that has rules. */
function udpDestinations(plan: FamilyPlan): Map<string, string> {
  const map = new Map<string, string>();
  if (!plan.container && !plan.host) return map;
  const targets = JSON.stringify([plan.container, plan.host]);
  for (const p of plan.portals) if (p.protocol === 'udp') map.set(`${p.ip} ${p.port}`, `${p.proxyPort} ${targets}`);
  if (plan.nodePortIPs === undefined || plan.nodePortIPs.length > 0) {
    const ips = JSON.stringify(plan.nodePortIPs ?? null);
    for (const n of plan.nodePorts) if (n.protocol === 'udp') map.set(`* ${n.nodePort}`, `${n.proxyPort} ${targets} ${ips}`);
  }
  return map;
}

/** Deletes conntrack entries; never throws (the rules are already in place; a failure here is a warning). */
export class ConntrackCleaner {
  readonly #runner: CommandRunner;
  #missingLogged = false;

  constructor(runner: CommandRunner) {
    this.#runner = runner;
  }

  /** Runs one `conntrack -D` per flow, 8 at a time. Returns how many commands ran. */
  async clear(flows: readonly StaleUdpFlow[]): Promise<number> {
    if (flows.length === 0) return 0;
    const conntrack = await resolveSystemBinary('conntrack');
    if (!conntrack) {
      if (!this.#missingLogged) log.debug('conntrack not installed; not clearing UDP entries of removed portals', { flows: flows.length });
      this.#missingLogged = true;
      return 0;
    }
    const queue = [...flows];
    const worker = async (): Promise<void> => {
      for (let flow = queue.shift(); flow; flow = queue.shift()) await this.#clearOne(conntrack, flow);
    };
    await Promise.all(Array.from({ length: Math.min(8, queue.length) }, worker));
    return flows.length;
  }

  async #clearOne(conntrack: string, flow: StaleUdpFlow): Promise<void> {
    const argv = [conntrack, '-D', '-f', flow.family === 'IPv4' ? 'ipv4' : 'ipv6', '-p', 'udp'];
    if (flow.ip !== undefined) argv.push('--orig-dst', flow.ip);
    argv.push('--orig-port-dst', String(flow.port));
    const result = await this.#runner(argv);
    // conntrack exits 1 when nothing matched; that is the common case, not an error.
    if (result.code === 0 || /0 flow entries have been deleted/.test(result.stderr)) {
      log.debug('cleared UDP conntrack entries', { ip: flow.ip ?? '*', port: flow.port });
      return;
    }
    log.warn('could not clear UDP conntrack entries', { ip: flow.ip ?? '*', port: flow.port, code: result.code, stderr: result.stderr.trim() });
  }
}
