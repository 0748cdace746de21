import net from 'node:net';
import os from 'node:os';
import { InvalidConfigError } from '../errors.js';
import { LOG_LEVELS } from '../log.js';
import type { LogFormat, LogLevel } from '../log.js';
import { parseAddress } from '../net/parse-address.js';
import { DEFAULT_CONFIG } from './config.js';
import type { Config, DialVia, DnsUpstream, RedirectMode } from './config.js';
import { parseLabelSelector } from '../model/label-selector.js';
import { formatDuration, parseDuration } from './duration.js';
import { MAX_WORKERS } from './flag-table.js';
import type { FlagValues } from './flag-values.js';
import { parseNodeLabels } from './node-labels.js';
import { parsePortRange } from './port-range.js';
import { parseServiceIPPool } from './service-ip-pool-cidr.js';

/** kube-proxy's --nodeport-addresses keywords this proxy takes, and the CIDRs they stand for. */
const NODE_PORT_KEYWORDS: Readonly<Record<string, readonly string[]>> = {
  all: ['0.0.0.0/0', '::/0'],
  localhost: ['127.0.0.0/8', '::1/128'],
};

/** The only proxy mode of kube-proxy this is. */
const PROXY_MODE = 'userspace';

/**
 * Validates flag values (from the command line and config files) into a frozen Config. Collects
 * every problem, each naming the flag or file field it came from, instead of stopping at the first.
 */
export function buildConfig(values: FlagValues, env: { isTTY: boolean }): { config: Config | undefined; problems: string[] } {
  const problems: string[] = [];
  const one = (name: string): string | undefined => values.get(name)?.values[0];
  const all = (name: string): readonly string[] => values.get(name)?.values ?? [];
  const src = (name: string): string => values.get(name)?.source ?? `--${name}`;

  const manifests = all('manifests');
  for (const m of manifests) if (m.trim() === '') problems.push(`${src('manifests')}: empty path`);

  const kubeconfig = one('kubeconfig');
  const master = one('master');
  const kubeContext = one('context');
  if (kubeContext !== undefined && kubeContext.trim() === '') problems.push(`${src('context')}: empty name`);
  if (kubeContext !== undefined && manifests.length > 0) problems.push(`${src('manifests')} cannot be combined with ${src('context')}: choose one service source`);
  if (master !== undefined && !/^https?:\/\/[^\s/]+/.test(master)) problems.push(`${src('master')}: "${master}" is not an http(s) URL`);
  if (manifests.length > 0 && (kubeconfig !== undefined || master !== undefined)) {
    problems.push(`${src('manifests')} cannot be combined with ${kubeconfig !== undefined ? src('kubeconfig') : src('master')}: choose one service source`);
  }
  const useEndpoints = one('use-endpoints') === 'true';
  const serviceProxyName = one('service-proxy-name') ?? DEFAULT_CONFIG.serviceProxyName;
  const hostnameOverride = one('hostname-override');
  if (hostnameOverride !== undefined && hostnameOverride.trim() === '') problems.push(`${src('hostname-override')}: empty name`);
  let nodeLabels: Readonly<Record<string, string>> = DEFAULT_CONFIG.nodeLabels;
  const nodeLabelsText = one('node-labels');
  if (nodeLabelsText !== undefined) {
    const parsed = parseNodeLabels(nodeLabelsText);
    if ('problems' in parsed) problems.push(...parsed.problems.map((p) => `${src('node-labels')}: ${p}`));
    else nodeLabels = Object.freeze(parsed.labels);
  }

  const dialVia = (one('dial-via') ?? DEFAULT_CONFIG.dialVia) as DialVia;
  if (dialVia !== 'direct' && dialVia !== 'port-forward') problems.push(`${src('dial-via')}: expected direct or port-forward, got "${dialVia}"`);
  else if (dialVia === 'port-forward' && manifests.length > 0) {
    problems.push(
      `${src('dial-via')} port-forward needs the Kubernetes API as the source (--kubeconfig, --master or the defaults), not ${src('manifests')}: manifests name no API server to forward through`,
    );
  }
  const namespaces: string[] = [];
  for (const text of all('namespace')) {
    for (const ns of text
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n !== '')) {
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns) || ns.length > 63)
        problems.push(`${src('namespace')}: "${ns}" is not a namespace name (a DNS label: lower-case letters, digits and '-', at most 63)`);
      else if (!namespaces.includes(ns)) namespaces.push(ns);
    }
  }
  const selector = (one('selector') ?? DEFAULT_CONFIG.selector).trim();
  if (selector !== '') {
    const parsed = parseLabelSelector(selector);
    if (typeof parsed === 'string') problems.push(`${src('selector')}: ${parsed}`);
  }

  const bindAddress = one('bind-address') ?? DEFAULT_CONFIG.bindAddress;
  if (net.isIP(bindAddress) === 0) problems.push(`${src('bind-address')}: "${bindAddress}" is not an IP address`);

  let proxyPortRange = DEFAULT_CONFIG.proxyPortRange;
  const rangeText = one('proxy-port-range');
  if (rangeText !== undefined) {
    const r = parsePortRange(rangeText);
    if (typeof r === 'string') problems.push(`${src('proxy-port-range')}: ${r}`);
    else proxyPortRange = r;
  }

  const duration = (name: string, def: number, min: number): number => {
    const text = one(name);
    if (text === undefined) return def;
    const ms = parseDuration(text);
    if (ms === undefined) {
      problems.push(`${src(name)}: "${text}" is not a duration (examples: 250ms, 30s, 1m)`);
      return def;
    }
    if (ms < min) {
      problems.push(`${src(name)}: must be at least ${formatDuration(min)}, got ${text}`);
      return def;
    }
    return ms;
  };
  const integer = (name: string, def: number, min: number, max: number, expected: string): number => {
    const text = one(name);
    if (text === undefined) return def;
    if (!/^-?\d+$/.test(text) || Number(text) < min || Number(text) > max) {
      problems.push(`${src(name)}: expected ${expected}, got "${text}"`);
      return def;
    }
    return Number(text);
  };
  const udpTimeoutMs = duration('udp-timeout', DEFAULT_CONFIG.udpTimeoutMs, 1);
  const syncPeriodMs = duration('sync-period', DEFAULT_CONFIG.syncPeriodMs, 1);
  const minSyncPeriodMs = duration('min-sync-period', DEFAULT_CONFIG.minSyncPeriodMs, 0);
  const configSyncPeriodMs = duration('config-sync-period', DEFAULT_CONFIG.configSyncPeriodMs, 1000);
  const udpMaxSessions = integer('udp-max-sessions', DEFAULT_CONFIG.udpMaxSessions, 0, Number.MAX_SAFE_INTEGER, 'a number of sessions (0 = derived from the open-file limit)');
  const tcpIdleTimeoutMs = duration('tcp-idle-timeout', DEFAULT_CONFIG.tcpIdleTimeoutMs, 0);

  // As client-go's rest.Config: 0 means the default.
  let kubeApiQps = DEFAULT_CONFIG.kubeApiQps;
  const qpsText = one('kube-api-qps');
  if (qpsText !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(qpsText)) problems.push(`${src('kube-api-qps')}: expected a number of requests per second (0 = default ${DEFAULT_CONFIG.kubeApiQps}), got "${qpsText}"`);
    else if (Number(qpsText) > 0) kubeApiQps = Number(qpsText);
  }
  const kubeApiBurst = integer('kube-api-burst', DEFAULT_CONFIG.kubeApiBurst, 0, 1_000_000, `a number of requests (0 = default ${DEFAULT_CONFIG.kubeApiBurst})`) || DEFAULT_CONFIG.kubeApiBurst;
  const kubeApiContentType = one('kube-api-content-type') || DEFAULT_CONFIG.kubeApiContentType;

  let workers = DEFAULT_CONFIG.workers;
  const workersText = one('workers');
  if (workersText !== undefined) {
    if (workersText === 'auto') workers = os.availableParallelism();
    else if (!/^\d+$/.test(workersText) || Number(workersText) < 1 || Number(workersText) > MAX_WORKERS)
      problems.push(`${src('workers')}: expected auto or a number from 1 to ${MAX_WORKERS}, got "${workersText}"`);
    else workers = Number(workersText);
  }

  const proxyMode = one('proxy-mode');
  if (proxyMode !== undefined && proxyMode !== '' && proxyMode !== PROXY_MODE) {
    problems.push(`${src('proxy-mode')}: "${proxyMode}" is not supported: this proxy is kube-proxy's ${PROXY_MODE} mode (choose how traffic reaches it with --redirect)`);
  }
  const redirect = (one('redirect') ?? DEFAULT_CONFIG.redirect) as RedirectMode;
  if (!['none', 'iptables', 'nftables', 'auto'].includes(redirect)) {
    problems.push(`${src('redirect')}: expected none, iptables, nftables or auto, got "${redirect}"`);
  }
  const assignServiceIPs = one('assign-service-ips');
  if (assignServiceIPs !== undefined) {
    if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(assignServiceIPs)) problems.push(`${src('assign-service-ips')}: "${assignServiceIPs}" is not an interface name`);
    else if (redirect === 'iptables' || redirect === 'nftables') problems.push(`${src('assign-service-ips')}: only with --redirect none or auto (rules capture the service IPs in ${redirect} mode)`);
  }
  const nodePortAddresses: string[] = [];
  for (const text of all('nodeport-addresses')) {
    for (const cidr of text
      .split(',')
      .map((c) => c.trim())
      .filter((c) => c !== '')) {
      const keyword = NODE_PORT_KEYWORDS[cidr];
      if (keyword) nodePortAddresses.push(...keyword);
      else if (cidr === 'primary') problems.push(`${src('nodeport-addresses')}: "primary" (the Node object's addresses) is not supported: list the CIDRs`);
      else if (!isCidr(cidr)) problems.push(`${src('nodeport-addresses')}: "${cidr}" is not a CIDR (examples: 10.0.0.0/8, 192.168.1.5/32, fd00::/64)`);
      else nodePortAddresses.push(cidr);
    }
  }
  const refuseEndpointCidrs: string[] = [];
  for (const cidr of all('refuse-endpoint-cidrs')
    .flatMap((text) => text.split(','))
    .map((c) => c.trim())
    .filter((c) => c !== '')) {
    if (!isCidr(cidr)) problems.push(`${src('refuse-endpoint-cidrs')}: "${cidr}" is not a CIDR (examples: 10.0.0.0/8, 192.168.1.5/32, fd00::/64)`);
    else refuseEndpointCidrs.push(cidr);
  }
  const serviceIPPool = one('service-ip-pool');
  if (serviceIPPool !== undefined) {
    const range = parseServiceIPPool(serviceIPPool);
    if (typeof range === 'string') problems.push(`${src('service-ip-pool')}: ${range}`);
    else if (redirect !== 'none')
      problems.push(`${src('service-ip-pool')}: only with --redirect none (the listeners bind the pool addresses themselves; ${redirect} mode captures ClusterIPs with rules)`);
    else if (assignServiceIPs !== undefined) problems.push(`${src('service-ip-pool')} cannot be combined with ${src('assign-service-ips')}: loopback pool addresses need no assignment`);
  }
  const hostsFile = one('hosts-file');
  if (hostsFile !== undefined && hostsFile.trim() === '') problems.push(`${src('hosts-file')}: empty path`);
  const cleanup = one('cleanup') === 'true';

  let logLevel = (one('log-level') ?? DEFAULT_CONFIG.logLevel) as LogLevel;
  const verbosity = one('v');
  if (verbosity !== undefined) {
    if (!/^\d+$/.test(verbosity)) problems.push(`${src('v') === '--v' ? '-v' : src('v')}: expected a number 0-10, got "${verbosity}"`);
    else if (one('log-level') !== undefined) problems.push(`${src('v') === '--v' ? '-v' : src('v')} and ${src('log-level')} both given: choose one`);
    else logLevel = Number(verbosity) >= 4 ? 'debug' : 'info';
  }
  const shutdownGracePeriodMs = duration('shutdown-grace-period', DEFAULT_CONFIG.shutdownGracePeriodMs, 0);
  const oomScoreAdj = integer('oom-score-adj', DEFAULT_CONFIG.oomScoreAdj, -1000, 1000, 'a number from -1000 to 1000');
  const hostPort = (name: string, def: string): string => {
    const text = one(name) ?? def;
    if (text === '') return text;
    try {
      parseAddress(text, src(name));
    } catch (err) {
      problems.push(...(err instanceof InvalidConfigError ? err.problems : [`${src(name)}: ${(err as Error).message}`]));
    }
    return text;
  };
  const healthzBindAddress = hostPort('healthz-bind-address', DEFAULT_CONFIG.healthzBindAddress);
  const metricsBindAddress = hostPort('metrics-bind-address', DEFAULT_CONFIG.metricsBindAddress);
  const dns = dnsSettings(one, src, problems);
  const dryRun = one('dry-run') === 'true';
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`${src('log-level')}: expected one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  const logFormat = (one('log-format') ?? (env.isTTY ? 'text' : 'json')) as LogFormat;
  if (logFormat !== 'text' && logFormat !== 'json') problems.push(`${src('log-format')}: expected text or json, got "${logFormat}"`);

  if (problems.length > 0) return { config: undefined, problems };
  const config: Config = Object.freeze({
    manifests: Object.freeze([...manifests]),
    kubeconfig,
    master,
    kubeContext,
    useEndpoints,
    serviceProxyName,
    configSyncPeriodMs,
    kubeApiQps,
    kubeApiBurst,
    kubeApiContentType,
    hostnameOverride: hostnameOverride?.trim().toLowerCase(),
    nodeLabels,
    dialVia,
    namespaces: Object.freeze(namespaces),
    selector,
    bindAddress,
    proxyPortRange,
    udpTimeoutMs,
    udpMaxSessions,
    tcpIdleTimeoutMs,
    workers,
    redirect,
    assignServiceIPs,
    nodePortAddresses: Object.freeze(nodePortAddresses),
    refuseEndpointCidrs: Object.freeze(refuseEndpointCidrs),
    serviceIPPool: typeof serviceIPPool === 'string' ? parseNormalised(serviceIPPool) : undefined,
    hostsFile,
    cleanup,
    syncPeriodMs,
    minSyncPeriodMs,
    shutdownGracePeriodMs,
    oomScoreAdj,
    healthzBindAddress,
    metricsBindAddress,
    ...dns,
    dryRun,
    logLevel,
    logFormat,
  });
  return { config, problems };
}

/** Longest TTL --dns-ttl takes (CoreDNS's kubernetes plugin has the same bound). */
const MAX_DNS_TTL_MS = 3_600_000;

/** The DNS server's settings: --dns-bind-address, --cluster-domain, --dns-ttl, --dns-upstream, --resolv-conf. */
function dnsSettings(
  one: (name: string) => string | undefined,
  src: (name: string) => string,
  problems: string[],
): Pick<Config, 'dnsBindAddress' | 'clusterDomain' | 'dnsTtlMs' | 'dnsUpstream' | 'resolvConf'> {
  const dnsBindAddress = one('dns-bind-address') ?? DEFAULT_CONFIG.dnsBindAddress;
  if (dnsBindAddress !== '') {
    try {
      parseAddress(dnsBindAddress, src('dns-bind-address'));
    } catch (err) {
      problems.push(...(err instanceof InvalidConfigError ? err.problems : [`${src('dns-bind-address')}: ${(err as Error).message}`]));
    }
  }
  let clusterDomain = (one('cluster-domain') ?? DEFAULT_CONFIG.clusterDomain).toLowerCase();
  if (clusterDomain.endsWith('.')) clusterDomain = clusterDomain.slice(0, -1);
  if (!DNS_NAME.test(clusterDomain)) {
    problems.push(`${src('cluster-domain')}: "${one('cluster-domain')}" is not a DNS domain (example: cluster.local)`);
    clusterDomain = DEFAULT_CONFIG.clusterDomain;
  }
  let dnsTtlMs = DEFAULT_CONFIG.dnsTtlMs;
  const ttlText = one('dns-ttl');
  if (ttlText !== undefined) {
    const ms = parseDuration(ttlText);
    if (ms === undefined || ms % 1000 !== 0 || ms > MAX_DNS_TTL_MS) problems.push(`${src('dns-ttl')}: expected whole seconds from 0s to 1h (DNS counts TTLs in seconds), got "${ttlText}"`);
    else dnsTtlMs = ms;
  }
  const dnsUpstream = (one('dns-upstream') ?? DEFAULT_CONFIG.dnsUpstream) as DnsUpstream;
  if (dnsUpstream !== 'forward' && dnsUpstream !== 'refuse') problems.push(`${src('dns-upstream')}: expected forward or refuse, got "${dnsUpstream}"`);
  const resolvConf = one('resolv-conf') ?? DEFAULT_CONFIG.resolvConf;
  if (resolvConf.trim() === '') problems.push(`${src('resolv-conf')}: empty path`);
  return { dnsBindAddress, clusterDomain, dnsTtlMs, dnsUpstream, resolvConf };
}

/** A DNS domain: dot-separated labels of lowercase letters, digits and inner hyphens. */
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

function isCidr(text: string): boolean {
  const slash = text.indexOf('/');
  if (slash < 0) return false;
  const ip = text.slice(0, slash);
  const bits = text.slice(slash + 1);
  const family = net.isIP(ip);
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/** A valid --service-ip-pool as written back (`127.1.0.0/16`). */
function parseNormalised(text: string): string {
  const range = parseServiceIPPool(text);
  return typeof range === 'string' ? text : range.cidr;
}
