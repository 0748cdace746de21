import { Counter, Gauge, Registry } from 'prom-client';
import type { PortCounters } from '../../lib/agent/agent.js';

/**
 * The per-port metrics as the project rendered them before PortSeries: prom-client metrics whose
 * collect() callbacks read the ports, in their own Registry. Kept as the reference that
 * PortSeries' text must equal for the same ports.
 */
type PortLabels = 'namespace' | 'service' | 'port' | 'protocol';
type Value = (st: PortCounters, stats: NonNullable<PortCounters['stats']>) => number | undefined;

const P = 'kube_userspace_proxy_';
const PORT_KEY = /^([^/]*)\/([^:]*):([^ ]*)/;

function portLabels(st: PortCounters): Record<PortLabels, string> {
  const m = PORT_KEY.exec(st.spn);
  return { namespace: m?.[1] ?? '', service: m?.[2] ?? st.spn, port: m?.[3] ?? '', protocol: st.protocol };
}

/** The text prom-client renders for the per-port metrics of `ports` (every block, each followed by an empty line, as in one registry). */
export async function promClientPortSeries(ports: readonly PortCounters[]): Promise<string> {
  const registry = new Registry();
  const registers = [registry];
  const labelNames: PortLabels[] = ['namespace', 'service', 'port', 'protocol'];
  const perPort = (kind: 'gauge' | 'counter', name: string, help: string, value: Value): void => {
    const collect = function (this: Gauge<PortLabels> | Counter<PortLabels>): void {
      this.reset();
      for (const st of ports) {
        if (st.stats === undefined) continue;
        const v = value(st, st.stats);
        if (v !== undefined) this.inc(portLabels(st), v);
      }
    };
    if (kind === 'gauge') new Gauge<PortLabels>({ name: `${P}${name}`, help, labelNames, registers, collect });
    else new Counter<PortLabels>({ name: `${P}${name}`, help, labelNames, registers, collect });
  };
  perPort('gauge', 'service_port_connections_active', 'TCP connections being proxied now (UDP: live sessions).', (_, s) => s.active);
  perPort('counter', 'connections_total', 'TCP connections accepted (UDP: sessions created).', (_, s) => s.total);
  perPort('counter', 'dial_failures_total', 'Connection attempts to an endpoint that failed (UDP: upstream errors).', (_, s) => s.dialFailures);
  perPort('counter', 'dial_retries_total', 'Connection attempts after the first for one client connection.', (_, s) => s.dialRetries);
  perPort('counter', 'dial_give_ups_total', 'Client connections reset after every connection attempt failed.', (_, s) => s.dialGiveUps);
  perPort('counter', 'no_endpoint_rejections_total', 'Connections (UDP: datagrams) turned away because the service port had no endpoint.', (_, s) => s.noEndpointRejections);
  perPort('gauge', 'udp_sessions', 'Live UDP sessions (client address to upstream socket).', (st, s) => (st.protocol === 'UDP' ? s.active : undefined));
  perPort(
    'counter',
    'local_resource_errors_total',
    'Connections refused or closed, dials and UDP sessions given up, and accept errors, for lack of local descriptors, buffers or memory (not counted as dial failures).',
    (_, s) => s.localResourceErrors,
  );
  perPort('counter', 'tcp_idle_timeouts_total', 'TCP connections closed after no byte either way for the idle timeout.', (st, s) => (st.protocol === 'TCP' ? s.tcpIdleTimeouts : undefined));
  perPort('counter', 'udp_evictions_total', 'UDP sessions closed to stay within --udp-max-sessions.', (st, s) => (st.protocol === 'UDP' ? s.udpEvictions : undefined));
  new Gauge<PortLabels | 'scheduler'>({
    name: `${P}service_port_scheduler_info`,
    help: 'Always 1; the scheduler label names how the service port picks endpoints (kube-userspace-proxy.io/scheduler).',
    labelNames: [...labelNames, 'scheduler'],
    registers,
    collect() {
      this.reset();
      for (const st of ports) this.set({ ...portLabels(st), scheduler: st.scheduler }, 1);
    },
  });
  new Counter<PortLabels | 'direction'>({
    name: `${P}bytes_total`,
    help: 'Bytes proxied: direction="in" from clients to endpoints, "out" from endpoints to clients.',
    labelNames: [...labelNames, 'direction'],
    registers,
    collect() {
      this.reset();
      for (const st of ports) {
        if (st.stats === undefined) continue;
        const labels = portLabels(st);
        this.inc({ ...labels, direction: 'in' }, st.stats.bytesIn);
        this.inc({ ...labels, direction: 'out' }, st.stats.bytesOut);
      }
    },
  });
  return registry.metrics();
}
