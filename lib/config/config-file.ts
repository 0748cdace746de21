import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import type { Config } from './config.js';
import { formatDuration } from './duration.js';
import { formatPortRange } from './port-range.js';

export const CONFIG_API_VERSION = 'kubeproxy.config.k8s.io/v1alpha1';
export const CONFIG_KIND = 'KubeProxyConfiguration';

/** KubeProxyConfiguration fields this proxy takes, and the flag each stands for. */
const FIELD_FLAGS: ReadonlyArray<readonly [path: string, flag: string, kind: 'string' | 'strings']> = [
  ['bindAddress', 'bind-address', 'string'],
  ['healthzBindAddress', 'healthz-bind-address', 'string'],
  ['metricsBindAddress', 'metrics-bind-address', 'string'],
  ['clientConnection.kubeconfig', 'kubeconfig', 'string'],
  ['hostnameOverride', 'hostname-override', 'string'],
  ['portRange', 'proxy-port-range', 'string'],
  ['udpIdleTimeout', 'udp-timeout', 'string'],
  ['configSyncPeriod', 'config-sync-period', 'string'],
  ['nodePortAddresses', 'nodeport-addresses', 'strings'],
  ['syncPeriod', 'sync-period', 'string'],
  ['minSyncPeriod', 'min-sync-period', 'string'],
  ['iptables.syncPeriod', 'sync-period', 'string'],
  ['iptables.minSyncPeriod', 'min-sync-period', 'string'],
];

/** Objects whose own fields are listed above one by one (so other fields of them are named precisely). */
const CONTAINERS = new Set(['clientConnection', 'iptables']);

/**
 * Reads a `kubeproxy.config.k8s.io/v1alpha1` KubeProxyConfiguration into flag values. Fields
 * that do not apply to this proxy (ipvs, conntrack, winkernel...) are rejected by name rather than
 * silently ignored, so nobody believes a setting is in force when it is not. Returns every
 * problem found, each naming the file and field.
 */
export function readConfigFile(file: string): { flags: Map<string, string[]>; problems: string[] } {
  const flags = new Map<string, string[]>();
  const problems: string[] = [];
  const at = (field: string, reason: string): void => void problems.push(`--config ${file}: ${field}: ${reason}`);
  let doc: unknown;
  try {
    doc = YAML.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    problems.push(`--config ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message.split('\n')[0]}`);
    return { flags, problems };
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    problems.push(`--config ${file}: expected a ${CONFIG_KIND} object`);
    return { flags, problems };
  }
  const obj = doc as Record<string, unknown>;
  if (obj['apiVersion'] !== CONFIG_API_VERSION) at('apiVersion', `must be ${CONFIG_API_VERSION}, got ${JSON.stringify(obj['apiVersion'])}`);
  if (obj['kind'] !== CONFIG_KIND) at('kind', `must be ${CONFIG_KIND}, got ${JSON.stringify(obj['kind'])}`);
  const known = new Map(FIELD_FLAGS.map(([path, flag, kind]) => [path, { flag, kind }]));
  const visit = (value: Record<string, unknown>, prefix: string): void => {
    for (const [key, v] of Object.entries(value)) {
      const path = prefix ? `${prefix}.${key}` : key;
      if (!prefix && (key === 'apiVersion' || key === 'kind')) continue;
      if (path === 'mode') {
        if (v !== '' && v !== 'userspace' && v !== null) at('mode', `this proxy is the userspace mode; "${String(v)}" is not supported (choose rules with --redirect)`);
        continue;
      }
      if (CONTAINERS.has(path) && v !== null && typeof v === 'object' && !Array.isArray(v)) {
        visit(v as Record<string, unknown>, path);
        continue;
      }
      const spec = known.get(path);
      if (!spec) {
        at(path, 'does not apply to kube-userspace-proxy');
        continue;
      }
      if (v === null || v === undefined || v === '') continue;
      if (spec.kind === 'strings') {
        if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) at(path, 'must be a list of strings');
        else flags.set(spec.flag, [...(flags.get(spec.flag) ?? []), ...v]);
      } else if (typeof v !== 'string') {
        at(path, `must be a string, got ${JSON.stringify(v)}`);
      } else {
        flags.set(spec.flag, [v]);
      }
    }
  };
  visit(obj, '');
  return { flags, problems };
}

/** The effective configuration as a KubeProxyConfiguration (the fields this proxy has), for --write-config-to. */
export function renderConfigFile(config: Config): string {
  const doc: Record<string, unknown> = {
    apiVersion: CONFIG_API_VERSION,
    kind: CONFIG_KIND,
    mode: 'userspace',
    bindAddress: config.bindAddress,
    healthzBindAddress: config.healthzBindAddress,
    metricsBindAddress: config.metricsBindAddress,
    clientConnection: { kubeconfig: config.kubeconfig ?? '' },
    hostnameOverride: config.hostnameOverride ?? '',
    portRange: formatPortRange(config.proxyPortRange),
    udpIdleTimeout: formatDuration(config.udpTimeoutMs),
    configSyncPeriod: formatDuration(config.configSyncPeriodMs),
    nodePortAddresses: [...config.nodePortAddresses],
    syncPeriod: formatDuration(config.syncPeriodMs),
    minSyncPeriod: formatDuration(config.minSyncPeriodMs),
  };
  return YAML.stringify(doc);
}
