import net from 'node:net';
import os from 'node:os';
import { InvalidConfigError } from '../errors.js';
import { LOG_LEVELS } from '../log.js';
import type { LogFormat, LogLevel } from '../log.js';
import { parseAddress } from '../server/parse-address.js';
import { readConfigFile } from './config-file.js';
import { DEFAULT_CONFIG } from './config.js';
import type { Config, RedirectMode } from './config.js';
import { formatDuration, parseDuration } from './duration.js';
import { parsePortRange } from './port-range.js';

type FlagKind = 'string' | 'strings' | 'int' | 'duration' | 'bool' | 'optional';

interface FlagSpec {
  readonly name: string;
  readonly kind: FlagKind;
  readonly value?: string;
  readonly help: string;
  readonly def?: string;
  /** For kind 'optional': the value when the flag is given without `=VALUE`. */
  readonly implicit?: string;
}

/** More processes than this only add memory and context switches. */
const MAX_WORKERS = 64;

/** Every flag, in the order --help shows them. Names follow kube-proxy where it has the flag. */
export const FLAGS: readonly FlagSpec[] = [
  { name: 'manifests', kind: 'strings', value: 'PATH', help: 'Service, Endpoints and EndpointSlice manifests (YAML or JSON file, or directory); repeatable; watched for changes' },
  { name: 'kubeconfig', kind: 'string', value: 'PATH', help: 'watch a Kubernetes API server using this kubeconfig (default without --manifests: in-cluster config, then $KUBECONFIG, then ~/.kube/config)' },
  { name: 'master', kind: 'string', value: 'URL', help: 'the API server URL (overrides the kubeconfig\'s server)' },
  { name: 'use-endpoints', kind: 'bool', help: 'watch v1 Endpoints instead of EndpointSlices (clusters older than 1.21)' },
  { name: 'service-proxy-name', kind: 'string', value: 'NAME', help: 'serve services labelled service.kubernetes.io/service-proxy-name=NAME (default: only unlabelled ones, as kube-proxy)' },
  { name: 'config-sync-period', kind: 'duration', value: 'DURATION', def: formatDuration(DEFAULT_CONFIG.configSyncPeriodMs), help: 'longest silence of an API watch before the agent re-lists' },
  { name: 'hostname-override', kind: 'string', value: 'NAME', help: 'this node\'s name, for internalTrafficPolicy/externalTrafficPolicy Local (default: the host name)' },
  { name: 'bind-address', kind: 'string', value: 'IP', def: DEFAULT_CONFIG.bindAddress, help: 'address listeners bind to when a service has no portal address on this machine' },
  { name: 'proxy-port-range', kind: 'string', value: 'RANGE', def: '""', help: 'proxy ports for the redirect modes: "" (kernel chooses), B-E, B+N, or a single port' },
  { name: 'udp-timeout', kind: 'duration', value: 'DURATION', def: formatDuration(DEFAULT_CONFIG.udpTimeoutMs), help: 'idle time after which a UDP session closes (the legacy proxy used 250ms, too short for slow DNS replies)' },
  { name: 'udp-max-sessions', kind: 'int', value: 'N', def: String(DEFAULT_CONFIG.udpMaxSessions), help: 'most UDP sessions per service port; the least recently active is evicted first' },
  { name: 'workers', kind: 'string', value: 'N|auto', def: String(DEFAULT_CONFIG.workers), help: 'processes serving connections and UDP sessions, this one included; auto = one per CPU (TCP ports with ClientIP affinity stay in this one)' },
  { name: 'redirect', kind: 'string', value: 'MODE', def: DEFAULT_CONFIG.redirect, help: 'how portal traffic reaches the listeners: none (listen on portal addresses directly), iptables, nftables, or auto (iptables, else nftables, else none --assign-service-ips)' },
  { name: 'assign-service-ips', kind: 'optional', value: '[=IFACE]', implicit: 'lo', help: 'with --redirect none: add each service IP to IFACE (default lo) and listen on it directly; removed again on exit' },
  { name: 'nodeport-addresses', kind: 'strings', value: 'CIDRS', def: 'all local addresses', help: 'CIDRs (comma-separated, repeatable) whose local addresses serve NodePorts' },
  { name: 'refuse-endpoint-cidrs', kind: 'strings', value: 'CIDRS', help: 'endpoint addresses never proxied to (comma-separated, repeatable), beside the built-in cloud metadata, loopback, link-local and own-listener ones' },
  { name: 'cleanup', kind: 'bool', help: 'remove rules, chains, tables and addresses left by earlier runs (and legacy kube-proxy userspace chains), then exit' },
  { name: 'sync-period', kind: 'duration', value: 'DURATION', def: formatDuration(DEFAULT_CONFIG.syncPeriodMs), help: 'longest time between two syncs of listeners with the services' },
  { name: 'min-sync-period', kind: 'duration', value: 'DURATION', def: formatDuration(DEFAULT_CONFIG.minSyncPeriodMs), help: 'shortest time between syncs once a burst of two has been used' },
  { name: 'shutdown-grace-period', kind: 'duration', value: 'DURATION', def: formatDuration(DEFAULT_CONFIG.shutdownGracePeriodMs), help: 'on SIGTERM: stop accepting, remove rules, let established connections finish this long, then close them (a second signal exits at once)' },
  { name: 'healthz-bind-address', kind: 'string', value: 'HOST:PORT', def: DEFAULT_CONFIG.healthzBindAddress, help: 'health server (/healthz, /livez); "" turns it off' },
  { name: 'metrics-bind-address', kind: 'string', value: 'HOST:PORT', def: DEFAULT_CONFIG.metricsBindAddress, help: 'metrics server (/metrics, /proxyMode, /status); "" turns it off' },
  { name: 'dry-run', kind: 'bool', help: 'print the rules (iptables-restore or nft syntax) that --redirect would install for the manifests, change nothing, exit' },
  { name: 'v', kind: 'int', value: 'N', help: 'log verbosity as kube-proxy\'s klog levels: 0-3 info, 4 and up debug (also -v N)' },
  { name: 'log-level', kind: 'string', value: 'LEVEL', def: DEFAULT_CONFIG.logLevel, help: 'error, warn, info (service and listener changes) or debug (every connection)' },
  { name: 'log-format', kind: 'string', value: 'FORMAT', def: 'text on a terminal, else json', help: 'text or json' },
  { name: 'config', kind: 'string', value: 'FILE', help: 'a kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration; flags override it; fields that do not apply are rejected by name' },
  { name: 'write-config-to', kind: 'string', value: 'FILE', help: 'write the effective configuration as a KubeProxyConfiguration and exit' },
  { name: 'help', kind: 'bool', help: 'print this help and exit' },
  { name: 'version', kind: 'bool', help: 'print the version and exit' },
];

export type ParsedFlags =
  | { readonly action: 'help' }
  | { readonly action: 'version' }
  | { readonly action: 'write-config'; readonly config: Config; readonly file: string }
  | { readonly action: 'run'; readonly config: Config };

/**
 * Turns argv (without node and the script) into a frozen Config. Reports every problem at once
 * in an InvalidConfigError, so a user fixes a command line in one go.
 */
export function parseFlags(argv: readonly string[], env: { isTTY: boolean } = { isTTY: false }): ParsedFlags {
  const problems: string[] = [];
  const seen = new Map<string, string[]>();
  const byName = new Map(FLAGS.map((f) => [f.name, f]));
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    // klog's short form, which kube-proxy users type: -v 4, -v=4.
    if (arg === '-v' || arg.startsWith('-v=')) arg = `-${arg}`;
    if (!arg.startsWith('--') || arg === '--') {
      problems.push(`unexpected argument "${arg}"`);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = byName.get(name);
    if (!spec) {
      problems.push(`unknown flag --${name}`);
      continue;
    }
    let value: string;
    if (spec.kind === 'optional') {
      // Only `--flag=VALUE` carries a value: `--flag VALUE` would be ambiguous with what follows.
      value = eq < 0 ? (spec.implicit ?? '') : arg.slice(eq + 1);
    } else if (spec.kind === 'bool') {
      value = eq < 0 ? 'true' : arg.slice(eq + 1);
      if (value !== 'true' && value !== 'false') {
        problems.push(`--${name}: expected true or false, got "${value}"`);
        continue;
      }
    } else if (eq >= 0) {
      value = arg.slice(eq + 1);
    } else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) {
      value = argv[++i]!;
    } else {
      problems.push(`--${name} needs a value (${spec.value ?? 'VALUE'})`);
      continue;
    }
    const list = seen.get(name) ?? [];
    if (list.length > 0 && spec.kind !== 'strings') {
      problems.push(`--${name} given more than once`);
      continue;
    }
    list.push(value);
    seen.set(name, list);
  }
  const one = (name: string): string | undefined => seen.get(name)?.[0];
  if (one('help') === 'true') return { action: 'help' };
  if (one('version') === 'true') return { action: 'version' };
  const configFile = one('config');
  if (configFile !== undefined) {
    // The file gives defaults; every flag on the command line overrides its field.
    const file = readConfigFile(configFile);
    problems.push(...file.problems);
    for (const [name, values] of file.flags) if (!seen.has(name)) seen.set(name, values);
  }

  const manifests = seen.get('manifests') ?? [];
  for (const m of manifests) if (m.trim() === '') problems.push('--manifests: empty path');

  const kubeconfig = one('kubeconfig');
  const master = one('master');
  if (master !== undefined && !/^https?:\/\/[^\s/]+/.test(master)) problems.push(`--master: "${master}" is not an http(s) URL`);
  if (manifests.length > 0 && (kubeconfig !== undefined || master !== undefined)) {
    problems.push('--manifests cannot be combined with --kubeconfig or --master: choose one service source');
  }
  const useEndpoints = one('use-endpoints') === 'true';
  const serviceProxyName = one('service-proxy-name') ?? DEFAULT_CONFIG.serviceProxyName;
  const hostnameOverride = one('hostname-override');
  if (hostnameOverride !== undefined && hostnameOverride.trim() === '') problems.push('--hostname-override: empty name');

  const bindAddress = one('bind-address') ?? DEFAULT_CONFIG.bindAddress;
  if (net.isIP(bindAddress) === 0) problems.push(`--bind-address: "${bindAddress}" is not an IP address`);

  let proxyPortRange = DEFAULT_CONFIG.proxyPortRange;
  const rangeText = one('proxy-port-range');
  if (rangeText !== undefined) {
    const r = parsePortRange(rangeText);
    if (typeof r === 'string') problems.push(`--proxy-port-range: ${r}`);
    else proxyPortRange = r;
  }

  const duration = (name: string, def: number, min: number): number => {
    const text = one(name);
    if (text === undefined) return def;
    const ms = parseDuration(text);
    if (ms === undefined) {
      problems.push(`--${name}: "${text}" is not a duration (examples: 250ms, 30s, 1m)`);
      return def;
    }
    if (ms < min) {
      problems.push(`--${name}: must be at least ${formatDuration(min)}, got ${text}`);
      return def;
    }
    return ms;
  };
  const udpTimeoutMs = duration('udp-timeout', DEFAULT_CONFIG.udpTimeoutMs, 1);
  const syncPeriodMs = duration('sync-period', DEFAULT_CONFIG.syncPeriodMs, 1);
  const minSyncPeriodMs = duration('min-sync-period', DEFAULT_CONFIG.minSyncPeriodMs, 0);
  const configSyncPeriodMs = duration('config-sync-period', DEFAULT_CONFIG.configSyncPeriodMs, 1000);

  let udpMaxSessions = DEFAULT_CONFIG.udpMaxSessions;
  const maxText = one('udp-max-sessions');
  if (maxText !== undefined) {
    if (!/^\d+$/.test(maxText) || Number(maxText) < 1) problems.push(`--udp-max-sessions: expected a positive integer, got "${maxText}"`);
    else udpMaxSessions = Number(maxText);
  }

  let workers = DEFAULT_CONFIG.workers;
  const workersText = one('workers');
  if (workersText !== undefined) {
    if (workersText === 'auto') workers = os.availableParallelism();
    else if (!/^\d+$/.test(workersText) || Number(workersText) < 1 || Number(workersText) > MAX_WORKERS) problems.push(`--workers: expected auto or a number from 1 to ${MAX_WORKERS}, got "${workersText}"`);
    else workers = Number(workersText);
  }

  const redirect = (one('redirect') ?? DEFAULT_CONFIG.redirect) as RedirectMode;
  if (!['none', 'iptables', 'nftables', 'auto'].includes(redirect)) {
    problems.push(`--redirect: expected none, iptables, nftables or auto, got "${redirect}"`);
  }
  const assignServiceIPs = one('assign-service-ips');
  if (assignServiceIPs !== undefined) {
    if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(assignServiceIPs)) problems.push(`--assign-service-ips: "${assignServiceIPs}" is not an interface name`);
    else if (redirect === 'iptables' || redirect === 'nftables') problems.push(`--assign-service-ips: only with --redirect none or auto (rules capture the service IPs in ${redirect} mode)`);
  }
  const nodePortAddresses: string[] = [];
  for (const text of seen.get('nodeport-addresses') ?? []) {
    for (const cidr of text.split(',').map((c) => c.trim()).filter((c) => c !== '')) {
      if (!isCidr(cidr)) problems.push(`--nodeport-addresses: "${cidr}" is not a CIDR (examples: 10.0.0.0/8, 192.168.1.5/32, fd00::/64)`);
      else nodePortAddresses.push(cidr);
    }
  }
  const refuseEndpointCidrs: string[] = [];
  for (const cidr of (seen.get('refuse-endpoint-cidrs') ?? []).flatMap((text) => text.split(',')).map((c) => c.trim()).filter((c) => c !== '')) {
    if (!isCidr(cidr)) problems.push(`--refuse-endpoint-cidrs: "${cidr}" is not a CIDR (examples: 10.0.0.0/8, 192.168.1.5/32, fd00::/64)`);
    else refuseEndpointCidrs.push(cidr);
  }
  const cleanup = one('cleanup') === 'true';

  let logLevel = (one('log-level') ?? DEFAULT_CONFIG.logLevel) as LogLevel;
  const verbosity = one('v');
  if (verbosity !== undefined) {
    if (!/^\d+$/.test(verbosity)) problems.push(`-v: expected a number 0-10, got "${verbosity}"`);
    else if (one('log-level') !== undefined) problems.push('-v and --log-level both given: choose one');
    else logLevel = Number(verbosity) >= 4 ? 'debug' : 'info';
  }
  const shutdownGracePeriodMs = duration('shutdown-grace-period', DEFAULT_CONFIG.shutdownGracePeriodMs, 0);
  const hostPort = (name: string, def: string): string => {
    const text = one(name) ?? def;
    if (text === '') return text;
    try {
      parseAddress(text, `--${name}`);
    } catch (err) {
      problems.push(...(err instanceof InvalidConfigError ? err.problems : [`--${name}: ${(err as Error).message}`]));
    }
    return text;
  };
  const healthzBindAddress = hostPort('healthz-bind-address', DEFAULT_CONFIG.healthzBindAddress);
  const metricsBindAddress = hostPort('metrics-bind-address', DEFAULT_CONFIG.metricsBindAddress);
  const dryRun = one('dry-run') === 'true';
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`--log-level: expected one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  const logFormat = (one('log-format') ?? (env.isTTY ? 'text' : 'json')) as LogFormat;
  if (logFormat !== 'text' && logFormat !== 'json') problems.push(`--log-format: expected text or json, got "${logFormat}"`);

  if (problems.length > 0) throw new InvalidConfigError(problems);
  const config: Config = Object.freeze({
    manifests: Object.freeze([...manifests]),
    kubeconfig,
    master,
    useEndpoints,
    serviceProxyName,
    configSyncPeriodMs,
    hostnameOverride: hostnameOverride?.trim().toLowerCase(),
    bindAddress,
    proxyPortRange,
    udpTimeoutMs,
    udpMaxSessions,
    workers,
    redirect,
    assignServiceIPs,
    nodePortAddresses: Object.freeze(nodePortAddresses),
    refuseEndpointCidrs: Object.freeze(refuseEndpointCidrs),
    cleanup,
    syncPeriodMs,
    minSyncPeriodMs,
    shutdownGracePeriodMs,
    healthzBindAddress,
    metricsBindAddress,
    dryRun,
    logLevel,
    logFormat,
  });
  const writeTo = one('write-config-to');
  if (writeTo !== undefined) return { action: 'write-config', config, file: writeTo };
  return { action: 'run', config };
}

function isCidr(text: string): boolean {
  const slash = text.indexOf('/');
  if (slash < 0) return false;
  const ip = text.slice(0, slash);
  const bits = text.slice(slash + 1);
  const family = net.isIP(ip);
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/** The --help text, generated from FLAGS so it cannot drift from what is parsed. */
export function usage(program: string): string {
  const lines = [
    `Usage: ${program} --manifests PATH [flags]`,
    `       ${program} [--kubeconfig PATH | --master URL] [flags]`,
    `       ${program} --cleanup | --dry-run --manifests PATH --redirect iptables|nftables`,
    `       ${program} status [--metrics-address HOST:PORT] [--output text|json]`,
    '',
    'Flags:',
  ];
  for (const f of FLAGS) {
    const left = `  --${f.name}${f.value ? `${f.kind === 'optional' ? '' : ' '}${f.value}` : ''}`;
    const def = f.def !== undefined ? ` (default ${f.def})` : '';
    lines.push(left.padEnd(32) + f.help + def);
  }
  return lines.join('\n');
}
