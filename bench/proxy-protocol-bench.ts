/**
 * The cost of the PROXY protocol header on the data path: new connections per second through the
 * proxy with no header, a v1 header and a v2 header, in one run.
 *
 *   node dist/bench/proxy-protocol-bench.js [--seconds 3] [--rounds 2] [--concurrency 8]
 *
 * The real command (`kube-userspace-proxy --manifests DIR`) runs as its own process with three
 * Services in front of one loopback backend, identical but for the annotation
 * kube-userspace-proxy.io/proxy-protocol (absent, v1, v2). This process is the client and the
 * backend: `--concurrency` loops of connect, send 5 bytes, read the backend's 3-byte answer,
 * close. The configurations alternate (none, v1, v2; v1, v2, none; ...) for `--seconds` each, so a
 * change of the machine's load shows in all of them; compare the ratios, not the absolute rates.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, spawnNode } from '../spec/helpers/process.js';
import { tcpConnects } from '../spec/helpers/backends.js';
import { waitFor } from '../spec/helpers/wait-for.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '8' },
  },
});
// Bounded: every load loop ends.
const SECONDS = Math.min(Number(values.seconds), 30);
const ROUNDS = Math.min(Number(values.rounds), 10);
const CONCURRENCY = Math.min(Number(values.concurrency), 256);
const PORT = 19998;
const CONFIGS = [
  { name: 'none', host: '127.78.1.1', annotation: '' },
  { name: 'v1', host: '127.78.1.2', annotation: 'v1' },
  { name: 'v2', host: '127.78.1.3', annotation: 'v2' },
] as const;

// The backend answers the first bytes of each connection (header and request alike) with "ok\n" and closes.
const backend = net.createServer((s) => {
  s.on('error', () => {});
  s.once('data', () => s.end('ok\n'));
});
await new Promise<void>((resolve) => backend.listen({ host: '127.0.0.1', port: 0 }, resolve));
const backendPort = (backend.address() as AddressInfo).port;

const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-pp-bench-'));
const docs = CONFIGS.map(
  (c) => `
apiVersion: v1
kind: Service
metadata:
  name: ${c.name}
  namespace: bench
${c.annotation ? `  annotations: {kube-userspace-proxy.io/proxy-protocol: ${c.annotation}}\n` : ''}spec:
  clusterIP: ${c.host}
  ports: [{name: p, port: ${PORT}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${c.name}-a, namespace: bench, labels: {kubernetes.io/service-name: ${c.name}}}
addressType: IPv4
ports: [{name: p, port: ${backendPort}}]
endpoints: [{addresses: ["127.0.0.1"]}]
`,
);
await writeFile(path.join(dir, 'bench.yaml'), docs.join('---\n'));
const proxy = spawnNode([CLI, '--manifests', dir, '--log-level', 'warn', '--healthz-bind-address=', '--metrics-bind-address=']);

function once(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port: PORT });
    let got = 0;
    s.on('error', () => resolve(false));
    s.on('connect', () => s.write('ping\n'));
    s.on('data', (d: Buffer) => (got += d.length));
    s.on('close', () => resolve(got === 3));
  });
}

async function run(host: string, ms: number): Promise<{ ok: number; failed: number }> {
  const deadline = performance.now() + ms;
  let ok = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        if (await once(host)) ok++;
        else failed++;
      }
    }),
  );
  return { ok, failed };
}

try {
  for (const c of CONFIGS) await waitFor(`${c.name} listening`, () => tcpConnects(c.host, PORT), 30_000, 50);
  for (const c of CONFIGS) await run(c.host, 500); // warm-up
  const rates = new Map<string, number[]>(CONFIGS.map((c) => [c.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    // Each round starts with the next configuration, so a trend in the machine's load does not favour one.
    for (let i = 0; i < CONFIGS.length; i++) {
      const c = CONFIGS[(r + i) % CONFIGS.length]!;
      const { ok, failed } = await run(c.host, SECONDS * 1000);
      const rate = ok / SECONDS;
      rates.get(c.name)!.push(rate);
      console.log(`round ${r + 1} ${c.name.padEnd(4)} ${rate.toFixed(0).padStart(6)} connections/s${failed ? ` (${failed} failed)` : ''}`);
    }
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const base = mean(rates.get('none')!);
  console.log(`\nmean connections/s (ratio to none), concurrency ${CONCURRENCY}, ${ROUNDS} x ${SECONDS} s each:`);
  for (const c of CONFIGS) console.log(`  ${c.name.padEnd(4)} ${mean(rates.get(c.name)!).toFixed(0).padStart(6)}  ${(mean(rates.get(c.name)!) / base).toFixed(3)}`);
} finally {
  proxy.child.kill('SIGTERM');
  backend.close();
  await rm(dir, { recursive: true, force: true });
  await proxy.exited;
}
