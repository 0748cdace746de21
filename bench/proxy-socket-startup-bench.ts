/**
 * The start-up cost of proxy sockets alone, in process: N TCP (or UDP) proxy sockets, each on its
 * own loopback address 127.101.a.b, created and started as the agent does at start, with the
 * default idle timeout. Reports CPU time (user + system) until every socket listens and the heap
 * and RSS they hold, per port; CPU time and heap bytes are what a shared machine distorts least.
 *
 *   node --expose-gc dist/bench/proxy-socket-startup-bench.js [--ports 10000] [--protocol TCP|UDP]
 */
import { parseArgs } from 'node:util';
import { RoundRobinBalancer } from '../lib/balancer/round-robin-balancer.js';
import { configureLogging } from '../lib/log.js';
import { servicePortName } from '../lib/model/service-port-name.js';
import { DEFAULT_CONFIG } from '../lib/config/config.js';
import { EndpointBackoff } from '../lib/proxy/endpoint-backoff.js';
import type { ProxySocket } from '../lib/proxy/proxy-socket.js';
import { TcpProxySocket } from '../lib/proxy/tcp/tcp-proxy-socket.js';
import { UdpProxySocket } from '../lib/proxy/udp/udp-proxy-socket.js';

const { values } = parseArgs({ options: { ports: { type: 'string', default: '10000' }, protocol: { type: 'string', default: 'TCP' } } });
const ports = Number(values.ports);
if (!Number.isSafeInteger(ports) || ports < 1 || ports > 60_000) throw new Error(`--ports: an integer in [1, 60000], got ${values.ports}`);
const protocol = values.protocol === 'UDP' ? 'UDP' : 'TCP';
configureLogging('warn', 'json');

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
gc();
const heap0 = process.memoryUsage().heapUsed;
const rss0 = process.memoryUsage().rss;
const cpu0 = process.cpuUsage();
const balancer = new RoundRobinBalancer();
const backoff = new EndpointBackoff();
const sockets: ProxySocket[] = [];
for (let i = 0; i < ports; i++) {
  const spn = servicePortName('bench', `svc-${i}`, 'p');
  const listen = [{ host: `127.101.${(i >> 8) & 255}.${(i & 255) + 0}`, port: 7000 + (i >> 16) }];
  sockets.push(protocol === 'TCP' ? new TcpProxySocket({ spn, listen, balancer, backoff, idleTimeoutMs: DEFAULT_CONFIG.tcpIdleTimeoutMs }) : new UdpProxySocket({ spn, listen, balancer, backoff }));
}
await Promise.all(sockets.map((s) => s.start()));
const cpu = process.cpuUsage(cpu0);
gc();
const mem = process.memoryUsage();
const cpuMs = (cpu.user + cpu.system) / 1000;
console.log(
  JSON.stringify({
    protocol,
    ports,
    node: process.version,
    cpuMs: Math.round(cpuMs),
    cpuUsPerPort: Math.round((cpuMs * 1000) / ports),
    heapBytesPerPort: Math.round((mem.heapUsed - heap0) / ports),
    rssMiB: Math.round(mem.rss / 2 ** 20),
    rssGrowthMiB: Math.round((mem.rss - rss0) / 2 ** 20),
  }),
);
for (const s of sockets) s.destroy();
