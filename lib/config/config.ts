import type { LogFormat, LogLevel } from '../log.js';
import type { PortRange } from './port-range.js';

export type RedirectMode = 'none' | 'iptables' | 'nftables' | 'auto';

/** The validated, frozen configuration of one agent run. */
export interface Config {
  readonly manifests: readonly string[];
  /** Address listeners bind to when a service has no local portal address. */
  readonly bindAddress: string;
  readonly proxyPortRange: PortRange | undefined;
  readonly udpTimeoutMs: number;
  readonly udpMaxSessions: number;
  readonly redirect: RedirectMode;
  /** The longest time between two syncs. */
  readonly syncPeriodMs: number;
  /** The shortest time between syncs beyond a burst of two. */
  readonly minSyncPeriodMs: number;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
}

export const DEFAULT_CONFIG: Config = Object.freeze({
  manifests: [],
  bindAddress: '0.0.0.0',
  proxyPortRange: undefined,
  udpTimeoutMs: 30_000,
  udpMaxSessions: 65_536,
  redirect: 'none',
  syncPeriodMs: 30_000,
  minSyncPeriodMs: 1_000,
  logLevel: 'info',
  logFormat: 'text',
});
