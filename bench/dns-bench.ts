/**
 * The DNS server's throughput and latency, and how soon a new Service resolves.
 *
 *   node dist/bench/dns-bench.js [--seconds 3] [--concurrency 16] [--proxy-connections 4] [--new-services 5] [--local]
 *
 * The real command (`kube-userspace-proxy --manifests DIR --dns-bind-address 127.0.0.1:PORT`) is
 * started as its own process, as a user runs it; this process is the client. While the queries
 * run, `--proxy-connections` clients keep sending 16 KiB echoes through one of the agent's
 * proxied TCP services, so the DNS server shares its event loop with proxied traffic.
 * - qps/latency: a closed loop of `--concurrency` outstanding UDP queries (A, for a service name)
 *   for `--seconds`; every reply is decoded and checked; p50/p99 over all of them.
 * - new service: a Service manifest is written (temp + rename); the time until its name answers
 *   NOERROR, polled every 2 ms, for `--new-services` services one after the other.
 * With --local the agent runs as `kube-userspace-proxy local` (a pool address per Service, and as
 * root a hosts file, here a temp file), so the new-service time includes the pool and the hosts
 * block; the proxied traffic goes to the pool address DNS answers.
 * On a shared machine the client's own CPU time is in the figures: they are lower bounds.
 */
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import dnsPacket from 'dns-packet';
import { freePort, tcpEcho, tcpRequest } from '../spec/helpers/backends.js';
import { CLI, spawnNode } from '../spec/helpers/process.js';
import { waitFor } from '../spec/helpers/wait-for.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '16' },
    'proxy-connections': { type: 'string', default: '4' },
    'new-services': { type: 'string', default: '5' },
    local: { type: 'boolean', default: false },
  },
});
const SECONDS = Math.min(Number(values.seconds), 30);
const CONCURRENCY = Math.min(Number(values.concurrency), 256);
const PROXY_CONNECTIONS = Math.min(Number(values['proxy-connections']), 64);
const NEW_SERVICES = Math.min(Number(values['new-services']), 50);
const HOST = '127.77.250.1';
const NAME = 'web.bench.svc.cluster.local';

const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-dns-bench-'));
const echo = await tcpEcho('127.0.0.1');
const write = async (file: string, text: string): Promise<void> => {
  await writeFile(path.join(dir, `.${file}.tmp`), text);
  await rename(path.join(dir, `.${file}.tmp`), path.join(dir, file));
};
await write(
  'web.yaml',
  `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: bench}
spec:
  clusterIP: ${HOST}
  ports: [{name: echo, port: 19999}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-a, namespace: bench, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: echo, port: ${echo.port}}]
endpoints: [{addresses: ["127.0.0.1"]}]
`,
);
const dnsPort = await freePort(HOST);
const LOCAL = values.local === true;
const local = LOCAL ? ['local', '--service-ip-pool', '127.77.251.0/24', ...(process.getuid?.() === 0 ? ['--hosts-file', path.join(dir, '.hosts')] : [])] : [];
const proxy = spawnNode([
  CLI,
  ...local,
  '--manifests',
  dir,
  '--dns-bind-address',
  `${HOST}:${dnsPort}`,
  '--dns-upstream',
  'refuse',
  '--log-level',
  'warn',
  '--healthz-bind-address=',
  '--metrics-bind-address=',
]);

const socket = dgram.createSocket('udp4');
await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
const waiting = new Map<number, (reply: Buffer) => void>();
socket.on('message', (msg) => {
  const id = msg.readUInt16BE(0);
  waiting.get(id)?.(msg);
  waiting.delete(id);
});
function query(name: string, timeoutMs = 2000): Promise<{ rcode: string; answers: number; address: string | undefined }> {
  let id = randomInt(65536);
  while (waiting.has(id)) id = randomInt(65536);
  const q = dnsPacket.encode({ id, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A' }] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(new Error('timeout'));
    }, timeoutMs);
    waiting.set(id, (reply) => {
      clearTimeout(timer);
      const d = dnsPacket.decode(reply) as unknown as { rcode: string; answers: Array<{ data: unknown }> };
      resolve({ rcode: d.rcode, answers: d.answers.length, address: typeof d.answers[0]?.data === 'string' ? d.answers[0].data : undefined });
    });
    socket.send(q, dnsPort, HOST);
  });
}

try {
  // The service's address: its ClusterIP, or with --local its pool address.
  const target = await waitFor('the DNS server', async () => (await query(NAME, 200)).address, 30_000);
  await waitFor('the proxied service', async () => (await tcpRequest(target, 19999, 'x')).toString() === 'x', 30_000);

  let proxying = true;
  let echoes = 0;
  const payload = Buffer.alloc(16 * 1024, 'e');
  const traffic = Array.from({ length: PROXY_CONNECTIONS }, async () => {
    while (proxying) {
      const r = await tcpRequest(target, 19999, payload);
      if (r.length === payload.length) echoes++;
    }
  });

  const latencies: number[] = [];
  let errors = 0;
  const deadline = Date.now() + SECONDS * 1000;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < deadline) {
        const t0 = process.hrtime.bigint();
        try {
          const r = await query(NAME);
          if (r.rcode !== 'NOERROR' || r.answers !== 1) errors++;
          else latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  proxying = false;
  await Promise.all(traffic);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!.toFixed(2);

  const toResolve: number[] = [];
  for (let i = 0; i < NEW_SERVICES; i++) {
    const name = `new${i}`;
    const t0 = process.hrtime.bigint();
    await write(
      `${name}.yaml`,
      `
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: bench}
spec:
  clusterIP: 127.77.250.${10 + i}
  ports: [{name: http, port: 19998}]
`,
    );
    await waitFor(`${name} to resolve`, async () => (await query(`${name}.bench.svc.cluster.local`, 200)).answers === 1, 10_000, 2);
    toResolve.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  toResolve.sort((a, b) => a - b);

  const result = {
    mode: LOCAL ? 'local' : 'agent',
    cpus: os.availableParallelism(),
    seconds: Number(elapsed.toFixed(2)),
    concurrency: CONCURRENCY,
    queries: latencies.length,
    errors,
    qps: Math.round(latencies.length / elapsed),
    latencyMs: { p50: pct(50), p99: pct(99), max: latencies.at(-1)!.toFixed(2) },
    proxiedEchoes16KiB: echoes,
    newServiceToResolveMs: { median: toResolve[Math.floor(toResolve.length / 2)]!.toFixed(1), max: toResolve.at(-1)!.toFixed(1) },
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  socket.close();
  proxy.child.kill('SIGKILL');
  await echo.close();
  await rm(dir, { recursive: true, force: true });
}
