import net from 'node:net';
import { parseDuration } from './duration.js';
import type { FlagValues, SettingWarning } from './flag-values.js';

export const KUBE_PROXY_API_VERSION = 'kubeproxy.config.k8s.io/v1alpha1';
export const KUBE_PROXY_KIND = 'KubeProxyConfiguration';

type FieldType = 'string' | 'bool' | 'int' | 'float' | 'duration' | 'strings' | 'boolMap' | 'quantity' | 'flushFrequency' | 'list';

/** One leaf field of kube-proxy's v1alpha1 types. */
interface Field {
  readonly type: FieldType;
  /** A Go pointer (`*int32`, `*bool`...): only null or absent means unset; a zero is a value. */
  readonly pointer?: true;
  /** The flag of this proxy that the field sets. */
  readonly flag?: string;
  /** Why the field does not act here; it is accepted, with a warning when set to a non-default value. */
  readonly ignored?: string;
  /** Values kube-proxy's v1alpha1 defaulting gives the field: set to one of them, an ignored field changes nothing. */
  readonly defaults?: readonly (string | number | boolean)[];
}
interface Schema {
  readonly [key: string]: Field | Schema;
}

const MASQUERADE = "this proxy installs no masquerade rules (connections reach endpoints from this node's own sockets)";
const IPVS = "kube-proxy's ipvs mode only";
const NFTABLES = "kube-proxy's nftables mode only (this proxy's sync periods are iptables.syncPeriod and iptables.minSyncPeriod)";
const WINDOWS = 'Windows only';
const CONNTRACK = 'this proxy does not tune conntrack';
const LOGGING = 'this proxy logs every line at once to stderr (set logging.format and logging.verbosity, or logLevel)';

const ignored = (type: FieldType, why: string, more: Partial<Field> = {}): Field => ({ type, ignored: why, ...more });
const flag = (type: FieldType, name: string, more: Partial<Field> = {}): Field => ({ type, flag: name, ...more });

/**
 * Every field of kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration (Kubernetes 1.33 and
 * later), and what it means here. Defaults are those of kube-proxy's v1alpha1 defaulting.
 */
const SCHEMA: Schema = {
  featureGates: ignored('boolMap', 'this proxy has no feature gates'),
  clientConnection: {
    kubeconfig: flag('string', 'kubeconfig'),
    acceptContentTypes: ignored('string', 'the API client chooses the Accept header of each request (application/json)'),
    contentType: flag('string', 'kube-api-content-type'),
    qps: flag('float', 'kube-api-qps'),
    burst: flag('int', 'kube-api-burst'),
  },
  logging: {
    format: flag('string', 'log-format'),
    flushFrequency: ignored('flushFrequency', LOGGING, { defaults: ['5s', 5_000_000_000] }),
    verbosity: flag('int', 'v'),
    vmodule: ignored('list', LOGGING),
    options: {
      text: { splitStream: ignored('bool', LOGGING), infoBufferSize: ignored('quantity', LOGGING) },
      json: { splitStream: ignored('bool', LOGGING), infoBufferSize: ignored('quantity', LOGGING) },
    },
  },
  hostnameOverride: flag('string', 'hostname-override'),
  bindAddress: flag('string', 'bind-address'),
  healthzBindAddress: flag('string', 'healthz-bind-address'),
  metricsBindAddress: flag('string', 'metrics-bind-address'),
  bindAddressHardFail: ignored('bool', 'a health or metrics server that cannot bind is logged and the proxy keeps serving'),
  enableProfiling: ignored('bool', 'this proxy serves no /debug/pprof'),
  showHiddenMetricsForVersion: ignored('string', 'this proxy has no hidden metrics'),
  mode: flag('string', 'proxy-mode'),
  iptables: {
    masqueradeBit: ignored('int', MASQUERADE, { pointer: true, defaults: [14] }),
    masqueradeAll: ignored('bool', MASQUERADE),
    localhostNodePorts: ignored('bool', 'NodePorts are served on the addresses nodePortAddresses selects', { pointer: true, defaults: [true] }),
    snatNodeInternalIP: ignored('bool', MASQUERADE, { pointer: true, defaults: [false] }),
    syncPeriod: flag('duration', 'sync-period'),
    minSyncPeriod: flag('duration', 'min-sync-period'),
  },
  ipvs: {
    syncPeriod: ignored('duration', IPVS, { defaults: ['30s'] }),
    minSyncPeriod: ignored('duration', IPVS),
    scheduler: ignored('string', IPVS),
    excludeCIDRs: ignored('strings', IPVS),
    strictARP: ignored('bool', IPVS),
    tcpTimeout: ignored('duration', IPVS),
    tcpFinTimeout: ignored('duration', IPVS),
    udpTimeout: ignored('duration', IPVS),
  },
  nftables: {
    masqueradeBit: ignored('int', NFTABLES, { pointer: true, defaults: [14] }),
    masqueradeAll: ignored('bool', NFTABLES),
    syncPeriod: ignored('duration', NFTABLES, { defaults: ['30s'] }),
    minSyncPeriod: ignored('duration', NFTABLES, { defaults: ['1s'] }),
  },
  winkernel: {
    networkName: ignored('string', WINDOWS),
    sourceVip: ignored('string', WINDOWS),
    enableDSR: ignored('bool', WINDOWS),
    rootHnsEndpointName: ignored('string', WINDOWS),
    forwardHealthCheckVip: ignored('bool', WINDOWS),
  },
  detectLocalMode: ignored('string', MASQUERADE, { defaults: ['ClusterCIDR'] }),
  detectLocal: {
    bridgeInterface: ignored('string', MASQUERADE),
    interfaceNamePrefix: ignored('string', MASQUERADE),
  },
  clusterCIDR: ignored('string', MASQUERADE),
  nodePortAddresses: flag('strings', 'nodeport-addresses'),
  oomScoreAdj: flag('int', 'oom-score-adj', { pointer: true }),
  conntrack: {
    maxPerCore: ignored('int', CONNTRACK, { pointer: true, defaults: [32 * 1024] }),
    min: ignored('int', CONNTRACK, { pointer: true, defaults: [128 * 1024] }),
    tcpEstablishedTimeout: ignored('duration', CONNTRACK, { pointer: true, defaults: ['24h'] }),
    tcpCloseWaitTimeout: ignored('duration', CONNTRACK, { pointer: true, defaults: ['1h'] }),
    tcpBeLiberal: ignored('bool', CONNTRACK),
    udpTimeout: ignored('duration', CONNTRACK),
    udpStreamTimeout: ignored('duration', CONNTRACK),
  },
  configSyncPeriod: flag('duration', 'config-sync-period'),
  portRange: flag('string', 'proxy-port-range'),
  windowsRunAsService: ignored('bool', WINDOWS),
  // In v1alpha1 until Kubernetes 1.25, for the userspace mode this proxy re-implements; a file
  // kept from such a cluster sets the UDP idle timeout with it.
  udpIdleTimeout: flag('duration', 'udp-timeout'),
};

/** Fields that v1alpha1 has elsewhere: an unknown field names where it lives. */
const MOVED: Readonly<Record<string, string>> = {
  syncPeriod: 'iptables.syncPeriod',
  minSyncPeriod: 'iptables.minSyncPeriod',
};

const HEALTHZ_PORT = 10256;
const METRICS_PORT = 10249;

/**
 * Reads one KubeProxyConfiguration document into flag values. Zero values (`""`, `0`, `0s`,
 * `null`, `{}`) mean the default, as kube-proxy's v1alpha1 defaulting makes them, so a file as
 * kubeadm writes it (every field present, most of them zero) loads. Fields that do not act here
 * are accepted; each one set to a non-default value comes back as a warning. A field that
 * v1alpha1 does not have, or a value of the wrong type, is a problem naming the field.
 */
export function readKubeProxyConfiguration(doc: Record<string, unknown>, file: string): { values: FlagValues; problems: string[]; warnings: SettingWarning[] } {
  const values: FlagValues = new Map();
  const problems: string[] = [];
  const warnings: SettingWarning[] = [];
  const label = (path: string): string => `--config ${file}: ${path}`;

  const visit = (obj: Record<string, unknown>, schema: Schema, prefix: string): void => {
    for (const [key, value] of Object.entries(obj)) {
      if (!prefix && (key === 'apiVersion' || key === 'kind')) continue;
      const path = prefix ? `${prefix}.${key}` : key;
      const node = schema[key];
      if (node === undefined) {
        const moved = prefix ? undefined : MOVED[key];
        problems.push(`${label(path)}: not a field of ${KUBE_PROXY_API_VERSION} ${KUBE_PROXY_KIND}${moved ? ` (it is ${moved} there)` : ''}`);
        continue;
      }
      if (!isField(node)) {
        if (value === null || value === undefined) continue;
        if (typeof value !== 'object' || Array.isArray(value)) problems.push(`${label(path)}: must be an object, got ${JSON.stringify(value)}`);
        else visit(value as Record<string, unknown>, node, path);
        continue;
      }
      const typeProblem = checkType(node, value);
      if (typeProblem) {
        problems.push(`${label(path)}: ${typeProblem}, got ${JSON.stringify(value)}`);
        continue;
      }
      const unset = node.pointer ? value === null || value === undefined : isZero(node.type, value);
      if (unset) continue;
      if (node.ignored !== undefined) {
        if (!isDefault(node, value)) warnings.push({ setting: label(path), reason: `set to ${JSON.stringify(value)}, not applied: ${node.ignored}` });
        continue;
      }
      const texts = Array.isArray(value) ? value.map(String) : [String(value)];
      values.set(node.flag!, { values: texts, source: label(path) });
    }
  };
  visit(doc, SCHEMA, '');

  // kube-proxy's defaulting: a bare IP gets the default port, and "" follows bindAddress's family.
  const bindAddress = values.get('bind-address')?.values[0] ?? '0.0.0.0';
  const ipv6 = net.isIPv6(bindAddress);
  for (const [name, field, port, v4, v6] of [
    ['healthz-bind-address', 'healthzBindAddress', HEALTHZ_PORT, '0.0.0.0', '::'],
    ['metrics-bind-address', 'metricsBindAddress', METRICS_PORT, '127.0.0.1', '::1'],
  ] as const) {
    const given = values.get(name);
    const host = given ? given.values[0]! : ipv6 ? v6 : v4;
    if (given && net.isIP(host) === 0) continue;
    if (!given && !ipv6) continue;
    values.set(name, { values: [net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`], source: label(field), implied: !given });
  }
  return { values, problems, warnings };
}

function isField(node: Field | Schema): node is Field {
  return typeof (node as Field).type === 'string';
}

/** What is wrong with the value's type, as Go's strict decoding of the field would see it, or undefined. */
function checkType(field: Field, value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  switch (field.type) {
    case 'string':
      return typeof value === 'string' ? undefined : 'must be a string';
    case 'bool':
      return typeof value === 'boolean' ? undefined : 'must be true or false';
    case 'int':
      return Number.isInteger(value) ? undefined : 'must be an integer';
    case 'float':
      return typeof value === 'number' && value >= 0 ? undefined : 'must be a number, 0 or more';
    case 'duration':
      return typeof value === 'string' && parseDuration(value) !== undefined ? undefined : 'must be a duration such as 30s or 1m';
    case 'flushFrequency':
      return Number.isInteger(value) || (typeof value === 'string' && parseDuration(value) !== undefined) ? undefined : 'must be a duration such as 5s, or nanoseconds';
    case 'strings':
      return Array.isArray(value) && value.every((v) => typeof v === 'string') ? undefined : 'must be a list of strings';
    case 'boolMap':
      return typeof value === 'object' && !Array.isArray(value) && Object.values(value as object).every((v) => typeof v === 'boolean') ? undefined : 'must be a map of names to true or false';
    case 'quantity':
      return typeof value === 'string' || typeof value === 'number' ? undefined : 'must be a quantity such as "0" or 64Ki';
    case 'list':
      return Array.isArray(value) ? undefined : 'must be a list';
  }
}

function isZero(type: FieldType, value: unknown): boolean {
  if (value === null || value === undefined) return true;
  switch (type) {
    case 'string':
    case 'bool':
    case 'int':
    case 'float':
      return value === '' || value === false || value === 0;
    case 'duration':
    case 'flushFrequency':
      return value === 0 || (typeof value === 'string' && parseDuration(value) === 0);
    case 'quantity':
      return value === 0 || value === '0' || value === '';
    case 'strings':
    case 'list':
      return Array.isArray(value) && value.length === 0;
    case 'boolMap':
      return Object.keys(value as object).length === 0;
  }
}

function isDefault(field: Field, value: unknown): boolean {
  for (const d of field.defaults ?? []) {
    if (d === value) return true;
    if ((field.type === 'duration' || field.type === 'flushFrequency') && typeof d === 'string' && typeof value === 'string' && parseDuration(d) === parseDuration(value)) return true;
  }
  return false;
}
