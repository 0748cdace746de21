import type { PortStatus } from '../agent/agent.js';

import { serviceKeyOf } from '../model/service-port-name.js';
import { formatHostPort } from '../net/host-port.js';
import type { HostPort } from '../net/host-port.js';

export interface ReadyView {
  /** The agent's service ports (Agent.status()). */
  readonly ports: readonly PortStatus[];
  /** --cluster-domain: the full names end in `.svc.<zone>`, as the DNS server answers them. */
  readonly clusterDomain: string;
  /** --dns-bind-address, undefined when the DNS server is off. */
  readonly dns: HostPort | undefined;
  /** The hosts file the names are kept in, if any. */
  readonly hostsFile: string | undefined;
}

/**
 * What `local` prints on stdout once the first sync is applied and the listeners are open: each
 * Service's full name, the address and ports it is served at, and how many endpoints it has; then
 * how to resolve the names. One row per Service, sorted by name.
 *
 * ```
 * NAME                           ADDRESS             ENDPOINTS
 * orders.shop.svc.cluster.local  127.1.223.142:8080  1 endpoint
 * web.shop.svc.cluster.local     127.1.124.57:8080   2 endpoints
 *
 * try: dig @127.0.0.1 -p 1053 orders.shop.svc.cluster.local
 * names: use the DNS server at 127.0.0.1:1053 or run with sudo for /etc/hosts
 * ```
 */
export function formatReadyTable(view: ReadyView): string {
  const byService = new Map<string, PortStatus[]>();
  for (const p of view.ports) {
    const key = serviceKeyOf(p.spn);
    const list = byService.get(key);
    if (list) list.push(p);
    else byService.set(key, [p]);
  }
  const rows: Array<[string, string, string]> = [];
  const notes: string[] = [];
  for (const [key, ports] of [...byService].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const [namespace, name] = key.split('/') as [string, string];
    const fqdn = `${name}.${namespace}.svc.${view.clusterDomain}`;
    rows.push([fqdn, addressesOf(ports), endpointsOf(ports)]);
    for (const p of ports) if (p.error !== undefined) notes.push(`! ${p.spn} (${p.protocol}): ${p.error}`);
  }
  // Clusters serve on 80 and 443 all the time; an ordinary user may not listen below 1024 (Linux).
  if (view.ports.some((p) => p.error?.includes('EACCES'))) {
    notes.push('  ports below 1024 need root: run with sudo, or allow every user once: sudo sysctl -w net.ipv4.ip_unprivileged_port_start=0');
  }
  const lines: string[] = [];
  if (rows.length === 0) {
    lines.push('No Services to serve yet (check the source, --namespace and --selector); they are served as they appear.');
  } else {
    const header: [string, string, string] = ['NAME', 'ADDRESS', 'ENDPOINTS'];
    const widths = [0, 1].map((i) => Math.max(...[header, ...rows].map((r) => r[i]!.length)));
    for (const r of [header, ...rows]) lines.push(`${r[0].padEnd(widths[0]!)}  ${r[1].padEnd(widths[1]!)}  ${r[2]}`);
  }
  lines.push(...notes, '');
  const dns = view.dns === undefined ? undefined : { host: dialable(view.dns.host), port: view.dns.port };
  if (dns !== undefined) {
    const example = rows[0]?.[0] ?? `kubernetes.default.svc.${view.clusterDomain}`;
    lines.push(`try: dig @${dns.host}${dns.port === 53 ? '' : ` -p ${dns.port}`} ${example}`);
  }
  if (view.hostsFile !== undefined) {
    lines.push(`names: in ${view.hostsFile} too (service, service.namespace and the full name), for every program`);
  } else if (dns !== undefined) {
    lines.push(`names: use the DNS server at ${formatHostPort(dns.host, dns.port)} or run with sudo for /etc/hosts`);
  } else {
    lines.push('names: none (no --dns-bind-address and no --hosts-file): connect to the addresses above');
  }
  return `${lines.join('\n')}\n`;
}

/** `127.1.124.57:8080,8443 [fd00::1]:8080`: ports per address; `/UDP` after a UDP port. */
function addressesOf(ports: readonly PortStatus[]): string {
  const byHost = new Map<string, string[]>();
  for (const p of ports) {
    for (const portal of p.portals) {
      const colon = portal.lastIndexOf(':');
      const host = portal.slice(0, colon);
      const port = `${portal.slice(colon + 1)}${p.protocol === 'TCP' ? '' : `/${p.protocol}`}`;
      const list = byHost.get(host);
      if (!list) byHost.set(host, [port]);
      else if (!list.includes(port)) list.push(port);
    }
  }
  return [...byHost].map(([host, list]) => `${host}:${list.join(',')}`).join(' ') || '-';
}

function endpointsOf(ports: readonly PortStatus[]): string {
  // Per port, not summed: two ports of the same pods are still those pods.
  const n = Math.max(0, ...ports.map((p) => p.endpoints.length));
  return `${n} endpoint${n === 1 ? '' : 's'}`;
}

/** A wildcard bind address is reached at loopback. */
function dialable(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}
