/**
 * New TCP connections per second through an in-process agent, per scheduler, in one run: the cost of
 * each scheduler on the connection path, as a ratio to rr measured alongside it.
 *
 *   node dist/bench/scheduler-bench.js [--seconds 1] [--rounds 7] [--concurrency 16] [--endpoints 8]
 *
 * One service per scheduler (annotated), all with the same loopback endpoints (servers that write
 * one byte and close). The loop connects, waits for that byte (so the proxy has dialed the endpoint
 * and spliced), closes, and starts the next, with --concurrency in flight and clients spread over 16
 * loopback source addresses (so sh and mh see several clients). Schedulers alternate within each
 * round, each round starting one scheduler later (--rounds 7 puts each in every position once), so
 * a busy neighbour on a shared machine weighs on all of them alike; figures are medians over rounds. Every loop is bounded by time and by count.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Agent } from '../lib/agent/agent.js';
import { SchedulingBalancer } from '../lib/balancer/scheduling-balancer.js';
import { configureLogging } from '../lib/log.js';
import { makeEndpoint } from '../lib/model/endpoint.js';
import { SCHEDULERS } from '../lib/model/scheduler-annotation.js';
import type { SchedulerName } from '../lib/model/scheduler-annotation.js';
import { ManifestSource } from '../lib/source/manifest-source.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '7' },
    concurrency: { type: 'string', default: '16' },
    endpoints: { type: 'string', default: '8' },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);
const ENDPOINTS = Number(values.endpoints);
const MAX_PER_RUN = 1_000_000;
configureLogging('warn', 'text');

async function oneByteServer(host: string): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.end('x');
  });
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  return server;
}

function connectOnce(host: string, port: number, localAddress: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, localAddress });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(5000, () => done(false));
    s.once('data', () => done(true));
    s.once('error', () => done(false));
  });
}

async function run(host: string, port: number): Promise<number> {
  const deadline = performance.now() + SECONDS * 1000;
  let ok = 0;
  let started = 0;
  const lane = async (n: number): Promise<void> => {
    while (performance.now() < deadline && started < MAX_PER_RUN) {
      started++;
      if (await connectOnce(host, port, `127.0.0.${(n % 16) + 1}`)) ok++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, n) => lane(n)));
  return ok / ((performance.now() - t0) / 1000);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
}

/** The balancer alone: nanoseconds per pick (no sockets), per scheduler, with the same endpoints. */
function pickCost(): Map<SchedulerName, number> {
  const out = new Map<SchedulerName, number>();
  const eps = Array.from({ length: ENDPOINTS }, (_, i) => makeEndpoint(`127.79.1.${i + 1}`, 8080));
  const clients = Array.from({ length: 1024 }, (_, i) => `10.${i >> 8}.${i & 255}.1`);
  const PICKS = 200_000;
  for (const name of SCHEDULERS) {
    const lb = new SchedulingBalancer();
    const spn = `bench/${name}:p` as Parameters<SchedulingBalancer['nextEndpoint']>[0];
    lb.newService(spn, { type: 'None', timeoutSeconds: 0 }, { scheduler: name, weights: {} });
    lb.updateEndpoints(spn, eps);
    lb.trackConnections(spn, new Map(eps.map((e, i) => [e.key, { active: i % 3 }])));
    for (let i = 0; i < 10_000; i++) lb.nextEndpoint(spn, clients[i & 1023]!, false);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < PICKS; i++) lb.nextEndpoint(spn, clients[i & 1023]!, false);
    out.set(name, Number(process.hrtime.bigint() - t0) / PICKS);
  }
  return out;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-sched-bench-'));
  const servers = await Promise.all(Array.from({ length: ENDPOINTS }, (_, i) => oneByteServer(`127.79.1.${i + 1}`)));
  const portal = (i: number): string => `127.79.0.${i + 1}`;
  const docs: string[] = [];
  SCHEDULERS.forEach((name, i) => {
    docs.push(
      [
        'apiVersion: v1',
        'kind: Service',
        'metadata:',
        `  name: ${name}`,
        '  namespace: bench',
        '  annotations:',
        `    kube-userspace-proxy.io/scheduler: ${name}`,
        'spec:',
        `  clusterIP: "${portal(i)}"`,
        '  ports:',
        '    - name: p',
        '      port: 8080',
      ].join('\n'),
    );
    servers.forEach((server, k) => {
      const port = (server.address() as net.AddressInfo).port;
      docs.push(
        [
          'apiVersion: discovery.k8s.io/v1',
          'kind: EndpointSlice',
          'metadata:',
          `  name: ${name}-${k}`,
          '  namespace: bench',
          '  labels:',
          `    kubernetes.io/service-name: ${name}`,
          'addressType: IPv4',
          'ports:',
          '  - name: p',
          `    port: ${port}`,
          '    protocol: TCP',
          'endpoints:',
          `  - addresses: ["127.79.1.${k + 1}"]`,
        ].join('\n'),
      );
    });
  });
  await writeFile(path.join(dir, 'all.yaml'), `${docs.join('\n---\n')}\n`);
  const agent = new Agent({ config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 1000, syncPeriodMs: 1000, minSyncPeriodMs: 0 }, source: new ManifestSource({ paths: [dir] }) });
  await agent.start();
  try {
    const deadline = Date.now() + 10_000;
    while (agent.status().filter((s) => s.endpoints.length === ENDPOINTS).length < SCHEDULERS.length) {
      if (Date.now() > deadline) throw new Error('the agent did not open every service port in 10 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const rates = new Map<SchedulerName, number[]>(SCHEDULERS.map((s) => [s, []]));
    for (let r = 0; r < ROUNDS; r++) {
      // Each round starts one scheduler later, so none always runs first or last (a shared machine's
      // load and the client side's TIME_WAIT sockets drift during a run).
      for (let k = 0; k < SCHEDULERS.length; k++) {
        const i = (r + k) % SCHEDULERS.length;
        rates.get(SCHEDULERS[i]!)!.push(await run(portal(i), 8080));
      }
    }
    const rr = median(rates.get('rr')!);
    console.log(`new connections/s, ${ENDPOINTS} endpoints, concurrency ${CONCURRENCY}, ${ROUNDS} rounds x ${SECONDS} s (median)`);
    const cost = pickCost();
    console.log('scheduler  conn/s   ÷ rr   ns/pick (balancer alone)');
    for (const name of SCHEDULERS) {
      const m = median(rates.get(name)!);
      console.log(`${name.padEnd(9)} ${m.toFixed(0).padStart(7)}  ${(m / rr).toFixed(2)}   ${cost.get(name)!.toFixed(0).padStart(6)}`);
    }
  } finally {
    agent.destroy();
    for (const s of servers) s.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
