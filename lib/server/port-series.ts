import type { PortCounters } from '../agent/agent.js';
import type { ProxyStats } from '../proxy/proxy-stats.js';
import { METRIC_PREFIX } from './userspace-proxy-metrics.js';

/** `namespace/name:port`, with ` (internal)`, ` (IPv6)` or both after it when the port is split by scope or family. */
const PORT_KEY = /^([^/]*)\/([^:]*):([^ ]*)/;

/** A value of one service port for one metric; undefined: the port has no series in it. */
type PortValue = (st: PortCounters, stats: ProxyStats) => number | undefined;

interface PortFamily {
  readonly name: string;
  readonly type: 'gauge' | 'counter';
  readonly help: string;
  readonly value: PortValue;
}

const P = METRIC_PREFIX;

/** The per-port metrics, in the order they are rendered; help texts are what dashboards have read since the first release. */
const FAMILIES: readonly PortFamily[] = [
  { name: `${P}service_port_connections_active`, type: 'gauge', help: 'TCP connections being proxied now (UDP: live sessions).', value: (_, s) => s.active },
  { name: `${P}connections_total`, type: 'counter', help: 'TCP connections accepted (UDP: sessions created).', value: (_, s) => s.total },
  { name: `${P}dial_failures_total`, type: 'counter', help: 'Connection attempts to an endpoint that failed (UDP: upstream errors).', value: (_, s) => s.dialFailures },
  { name: `${P}dial_retries_total`, type: 'counter', help: 'Connection attempts after the first for one client connection.', value: (_, s) => s.dialRetries },
  { name: `${P}dial_give_ups_total`, type: 'counter', help: 'Client connections reset after every connection attempt failed.', value: (_, s) => s.dialGiveUps },
  { name: `${P}no_endpoint_rejections_total`, type: 'counter', help: 'Connections (UDP: datagrams) turned away because the service port had no endpoint.', value: (_, s) => s.noEndpointRejections },
  { name: `${P}udp_sessions`, type: 'gauge', help: 'Live UDP sessions (client address to upstream socket).', value: (st, s) => (st.protocol === 'UDP' ? s.active : undefined) },
  {
    name: `${P}local_resource_errors_total`,
    type: 'counter',
    help: 'Connections refused or closed, dials and UDP sessions given up, and accept errors, for lack of local descriptors, buffers or memory (not counted as dial failures).',
    value: (_, s) => s.localResourceErrors,
  },
  {
    name: `${P}tcp_idle_timeouts_total`,
    type: 'counter',
    help: 'TCP connections closed after no byte either way for the idle timeout.',
    value: (st, s) => (st.protocol === 'TCP' ? s.tcpIdleTimeouts : undefined),
  },
  { name: `${P}udp_evictions_total`, type: 'counter', help: 'UDP sessions closed to stay within --udp-max-sessions.', value: (st, s) => (st.protocol === 'UDP' ? s.udpEvictions : undefined) },
];

const SCHEDULER_INFO = {
  name: `${P}service_port_scheduler_info`,
  help: 'Always 1; the scheduler label names how the service port picks endpoints (kube-userspace-proxy.io/scheduler).',
};

const BYTES = {
  name: `${P}bytes_total`,
  help: 'Bytes proxied: direction="in" from clients to endpoints, "out" from endpoints to clients.',
};

/** The slots of PortLines for the two bytes series, after those of FAMILIES. */
const BYTES_IN = FAMILIES.length;
const BYTES_OUT = FAMILIES.length + 1;

/** Ports rendered between two yields to the event loop. */
const PORTS_PER_SLICE = 2000;

/** Escaping of the Prometheus text format (0.0.4), as prom-client does it. */
function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabel(s: string): string {
  return escapeHelp(s).replace(/"/g, '\\"');
}

/** A sample value as prom-client writes it. */
function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'Nan';
  if (!Number.isFinite(v)) return v < 0 ? '-Inf' : '+Inf';
  return `${v}`;
}

function header(name: string, type: string, help: string): string {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}`;
}

/** The labels of a listener, rendered: its Service, the port's name ('' when unnamed) and protocol. */
function labelsOf(st: PortCounters): string {
  const m = PORT_KEY.exec(st.spn);
  const [namespace, service, port] = m ? [m[1]!, m[2]!, m[3]!] : ['', st.spn, ''];
  // Joined, not concatenated: the text is kept and copied into every scrape, and a flat string copies fast.
  return ['namespace="', escapeLabel(namespace), '",service="', escapeLabel(service), '",port="', escapeLabel(port), '",protocol="', escapeLabel(st.protocol), '"'].join('');
}

/**
 * One port's label text and the sample lines it rendered last, each with the value it shows: a
 * line is written again only when its value changed (comparing a number costs far less than
 * formatting one and building its line).
 */
class PortLines {
  readonly #values: (number | undefined)[] = [];
  readonly #lines: string[] = [];
  #scheduler: string | undefined;
  #schedulerLine = '';

  constructor(readonly labels: string) {}

  /** The line of sample `slot` (a FAMILIES index, BYTES_IN or BYTES_OUT) for value v; `extra` is its labels after the port's own. */
  line(slot: number, name: string, extra: string, v: number): string {
    if (this.#values[slot] === v) return this.#lines[slot]!;
    // Joined, not concatenated, for the same reason as the label text.
    const line = [name, '{', this.labels, extra, '} ', formatValue(v)].join('');
    this.#values[slot] = v;
    this.#lines[slot] = line;
    return line;
  }

  schedulerLine(scheduler: string): string {
    if (this.#scheduler !== scheduler) {
      this.#scheduler = scheduler;
      this.#schedulerLine = [SCHEDULER_INFO.name, '{', this.labels, ',scheduler="', escapeLabel(scheduler), '"} 1'].join('');
    }
    return this.#schedulerLine;
  }
}

/**
 * This project's per-service-port metrics (connections, dials, bytes, UDP sessions, scheduler),
 * written in the Prometheus text format straight from the ports' ProxyStats.
 *
 * Why by hand: with 10,000 service ports a scrape is about 130,000 samples, and building them as
 * prom-client label objects, hashing and formatting them took over a second of the event loop. Here
 * each port keeps its label text and its last sample lines while the port lasts (PortLines), a line
 * is written again only when its value changed since the last scrape (most ports of a large
 * cluster are idle between two scrapes), and the work is cut into slices with a yield between
 * them, so that no scrape stalls connections or watch events for long. The text is the one
 * prom-client wrote: the same names, types, help, label order, series order (that of the ports)
 * and value format; a port whose internal and external traffic have listeners of their own
 * (different traffic policies) gets the same labels for both, so its series are their sums, as
 * prom-client's inc() on equal labels made them.
 */
export class PortSeries {
  /** Label text and last lines per port key and protocol; rebuilt at each scrape from the ports present, so it never outgrows them. */
  #lines = new Map<string, PortLines>();

  /** One text block per metric (HELP, TYPE, then its samples, no trailing newline), from one snapshot of the ports. */
  async render(ports: readonly PortCounters[]): Promise<string[]> {
    const cached = this.#linesFor(ports);
    const labels = cached.map((c) => c.labels);
    const groups = groupsOf(labels, ports);
    const blocks = [...FAMILIES.map((f) => header(f.name, f.type, f.help)), header(SCHEDULER_INFO.name, 'gauge', SCHEDULER_INFO.help), header(BYTES.name, 'counter', BYTES.help)];
    const seen: Set<string>[] = blocks.map(() => new Set());
    for (let from = 0; from < ports.length; from += PORTS_PER_SLICE) {
      if (from > 0) await new Promise((resolve) => setImmediate(resolve));
      // Joined slice by slice: joining 130,000 lines at the end was one long stall of its own.
      const parts: string[][] = blocks.map(() => []);
      const to = Math.min(ports.length, from + PORTS_PER_SLICE);
      for (let f = 0; f < FAMILIES.length; f++) {
        const { name, value } = FAMILIES[f]!;
        const out = parts[f]!;
        for (let i = from; i < to; i++) {
          const st = ports[i]!;
          if (st.stats === undefined) continue;
          const v = value(st, st.stats);
          if (v === undefined) continue;
          const group = groups.get(labels[i]!);
          if (group === undefined) out.push(cached[i]!.line(f, name, '', v));
          else if (!seen[f]!.has(labels[i]!)) {
            seen[f]!.add(labels[i]!);
            out.push(`${name}{${labels[i]}} ${formatValue(sum(group, value))}`);
          }
        }
      }
      const info = parts[FAMILIES.length]!;
      for (let i = from; i < to; i++) {
        const st = ports[i]!;
        if (!groups.has(labels[i]!)) {
          info.push(cached[i]!.schedulerLine(st.scheduler));
          continue;
        }
        const l = `${labels[i]},scheduler="${escapeLabel(st.scheduler)}"`;
        if (seen[FAMILIES.length]!.has(l)) continue;
        seen[FAMILIES.length]!.add(l);
        info.push(`${SCHEDULER_INFO.name}{${l}} 1`);
      }
      const bytes = parts[FAMILIES.length + 1]!;
      for (let i = from; i < to; i++) {
        const st = ports[i]!;
        if (st.stats === undefined) continue;
        const group = groups.get(labels[i]!);
        if (group === undefined) {
          const c = cached[i]!;
          bytes.push(c.line(BYTES_IN, BYTES.name, ',direction="in"', st.stats.bytesIn), c.line(BYTES_OUT, BYTES.name, ',direction="out"', st.stats.bytesOut));
          continue;
        }
        if (seen[FAMILIES.length + 1]!.has(labels[i]!)) continue;
        seen[FAMILIES.length + 1]!.add(labels[i]!);
        const bytesIn = sum(group, (_, s) => s.bytesIn);
        const bytesOut = sum(group, (_, s) => s.bytesOut);
        bytes.push(`${BYTES.name}{${labels[i]},direction="in"} ${formatValue(bytesIn)}`, `${BYTES.name}{${labels[i]},direction="out"} ${formatValue(bytesOut)}`);
      }
      parts.forEach((lines, f) => {
        if (lines.length > 0) blocks[f] += `\n${lines.join('\n')}`;
      });
    }
    return blocks;
  }

  #linesFor(ports: readonly PortCounters[]): PortLines[] {
    const previous = this.#lines;
    const next = new Map<string, PortLines>();
    const out = ports.map((st) => {
      const key = `${st.spn}\n${st.protocol}`;
      const c = previous.get(key) ?? next.get(key) ?? new PortLines(labelsOf(st));
      next.set(key, c);
      return c;
    });
    this.#lines = next;
    return out;
  }
}

/** The ports that share their labels with another (a port split by scope or family), by label text. */
function groupsOf(labels: readonly string[], ports: readonly PortCounters[]): Map<string, PortCounters[]> {
  const first = new Map<string, PortCounters>();
  const groups = new Map<string, PortCounters[]>();
  labels.forEach((l, i) => {
    const st = first.get(l);
    if (st === undefined) first.set(l, ports[i]!);
    else {
      const g = groups.get(l);
      if (g === undefined) groups.set(l, [st, ports[i]!]);
      else g.push(ports[i]!);
    }
  });
  return groups;
}

/** The sum over the ports of a group that have the series, in their order, as prom-client's inc() added them. */
function sum(group: readonly PortCounters[], value: PortValue): number {
  let total = 0;
  for (const st of group) {
    if (st.stats === undefined) continue;
    const v = value(st, st.stats);
    if (v !== undefined) total += v;
  }
  return total;
}
