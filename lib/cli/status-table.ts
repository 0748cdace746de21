import type { ServicePortStatusJson, StatusDocument } from '../server/status-document.js';

/**
 * The agent's state as a table in the spirit of `ipvsadm -Ln`: one line per service port (its
 * portals, proxy port, scheduler and affinity), and under it one `->` line per endpoint with its
 * active and total connections and failed dials.
 *
 * ```
 * kube-userspace-proxy: redirect none, healthy, last sync 2024-05-01T10:00:00.000Z
 * 2 services, 3 service ports, 4 endpoints
 * Prot Service port          Portals                    ProxyPort Scheduler Affinity
 *   -> Endpoint              ActiveConn TotalConn Failures
 * TCP  default/web:http      10.96.0.10:80,*:30080      41234     rr        None
 *   -> 10.244.1.5:8080       1          3         0
 * ```
 *
 * `*:PORT` in Portals is the node port; ProxyPort is `-` in none mode, where the listeners are the
 * portals. A service port whose listener is not open gets a `!` line with the reason; an endpoint
 * that left the rotation is listed, marked `removed`, while connections to it finish.
 */
export function formatStatusTable(doc: StatusDocument): string {
  const health = doc.healthy ? 'healthy' : `UNHEALTHY (${doc.reasons.join('; ') || 'unknown reason'})`;
  const head = [
    `kube-userspace-proxy: redirect ${doc.redirectMode}, ${health}, last sync ${doc.lastUpdated ?? 'never'}`,
    `${plural(doc.counts.services, 'service')}, ${plural(doc.counts.servicePorts, 'service port')}, ${plural(doc.counts.endpoints, 'endpoint')}`,
  ];
  if (doc.source !== null) {
    const s = doc.source;
    head.push(
      `source: kubernetes, ${s.connected ? 'connected' : 'disconnected'}, last contact ${s.lastSuccess ?? 'never'}, ${plural(s.informerRestarts, 'informer restart')}${s.lastError !== null ? `, last error: ${s.lastError}` : ''}`,
    );
  }

  const portals = (sp: ServicePortStatusJson): string => [...sp.portals, ...(sp.nodePort > 0 ? [`*:${sp.nodePort}`] : [])].join(',') || '-';
  const nameWidth = Math.max('Service port'.length, ...doc.servicePorts.flatMap((sp) => [sp.servicePort.length, ...sp.endpoints.map((e) => e.endpoint.length)]));
  const portalsWidth = Math.max('Portals'.length, ...doc.servicePorts.map((sp) => portals(sp).length));
  const row = (cells: readonly string[], widths: readonly number[]): string =>
    cells
      .map((c, i) => (i < widths.length ? c.padEnd(widths[i] as number) : c))
      .join(' ')
      .trimEnd();
  const serviceWidths = [4, nameWidth, portalsWidth, 'ProxyPort'.length, 'Scheduler'.length];
  const endpointWidths = [4, nameWidth, 'ActiveConn'.length, 'TotalConn'.length];

  const lines = [
    ...head,
    row(['Prot', 'Service port', 'Portals', 'ProxyPort', 'Scheduler', 'Affinity'], serviceWidths),
    row(['  ->', 'Endpoint', 'ActiveConn', 'TotalConn', 'Failures'], endpointWidths),
  ];
  for (const sp of doc.servicePorts) {
    const affinity = sp.affinity.type === 'ClientIP' ? `ClientIP ${sp.affinity.timeoutSeconds}s` : sp.affinity.type;
    lines.push(row([sp.protocol, sp.servicePort, portals(sp), sp.proxyPort > 0 ? String(sp.proxyPort) : '-', sp.scheduler, affinity], serviceWidths));
    if (sp.error !== null) lines.push(`     ! ${sp.error}`);
    if (sp.endpoints.length === 0) lines.push('  -> (no endpoints)');
    for (const e of sp.endpoints) {
      lines.push(row(['  ->', e.endpoint, String(e.active), String(e.total), String(e.dialFailures), ...(e.inRotation ? [] : ['removed'])], [...endpointWidths, 'Failures'.length]));
    }
  }
  return `${lines.join('\n')}\n`;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
