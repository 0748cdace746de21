import type { EndpointStats } from '../proxy/proxy-stats.js';
import { ProxyStats } from '../proxy/proxy-stats.js';

/** ProxyStats as plain data, to cross a process boundary. */
export interface StatsSnapshot {
  readonly active: number;
  readonly total: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly noEndpointRejections: number;
  readonly dialFailures: number;
  readonly dialRetries: number;
  readonly dialGiveUps: number;
  readonly udpEvictions: number;
  readonly localResourceErrors: number;
  readonly tcpIdleTimeouts: number;
  readonly maxAgeCloses: number;
  readonly endpoints: ReadonlyArray<readonly [string, EndpointStats]>;
}

const COUNTERS = [
  'active',
  'total',
  'bytesIn',
  'bytesOut',
  'noEndpointRejections',
  'dialFailures',
  'dialRetries',
  'dialGiveUps',
  'udpEvictions',
  'localResourceErrors',
  'tcpIdleTimeouts',
  'maxAgeCloses',
] as const;

export function snapshotOf(stats: ProxyStats): StatsSnapshot {
  return {
    active: stats.active,
    total: stats.total,
    bytesIn: stats.bytesIn,
    bytesOut: stats.bytesOut,
    noEndpointRejections: stats.noEndpointRejections,
    dialFailures: stats.dialFailures,
    dialRetries: stats.dialRetries,
    dialGiveUps: stats.dialGiveUps,
    udpEvictions: stats.udpEvictions,
    localResourceErrors: stats.localResourceErrors,
    tcpIdleTimeouts: stats.tcpIdleTimeouts,
    maxAgeCloses: stats.maxAgeCloses,
    endpoints: [...stats.endpoints].map(([key, es]) => [key, { active: es.active, total: es.total, dialFailures: es.dialFailures }] as const),
  };
}

/** Adds a snapshot's counters into `into`; `withActive` false adds everything but the active counts (a worker that is gone). */
export function addSnapshot(into: ProxyStats, s: StatsSnapshot, withActive = true): void {
  for (const c of COUNTERS) if (c !== 'active' || withActive) into[c] += s[c];
  for (const [key, es] of s.endpoints) {
    // Not into.endpoint(): its pruning would drop idle entries of a sum made for one reading.
    let to = into.endpoints.get(key);
    if (to === undefined) {
      to = { active: 0, total: 0, dialFailures: 0 };
      into.endpoints.set(key, to);
    }
    if (withActive) to.active += es.active;
    to.total += es.total;
    to.dialFailures += es.dialFailures;
  }
}

/** The sum of several processes' counters of one service port. */
export function sumStats(local: ProxyStats, others: Iterable<StatsSnapshot>, gone: Iterable<StatsSnapshot> = []): ProxyStats {
  const out = new ProxyStats();
  addSnapshot(out, snapshotOf(local));
  for (const s of others) addSnapshot(out, s);
  for (const s of gone) addSnapshot(out, s, false);
  return out;
}
