/**
 * The cost of one /metrics scrape with many service ports, on the event loop of the proxy.
 *
 *   node dist/bench/metrics-scrape-bench.js [--ports 10000] [--scrapes 10] [--root DIR]...
 *
 * In one process: a real Agent (none mode, loopback) fed by a real ManifestSource with N
 * Services of one TCP port each (own loopback ClusterIP 127.101.a.b, one endpoint), and its
 * Metrics with prom-client's process metrics, as the CLI builds them. Each scrape is
 * Metrics.render(), one at a time; measured per scrape:
 *   wall_ms    render() called → its text;
 *   cpu_ms     CPU of the process meanwhile (user + system; the agent is idle otherwise);
 *   stall_ms   the longest event-loop delay seen during the scrapes (monitorEventLoopDelay,
 *              1 ms resolution): the time a connection or a watch event may wait behind a scrape.
 * Each --root (default: this checkout) is a checkout whose dist/ is measured, in turn, so that
 * two builds are compared in the same run; the text of every root is checked to have the same
 * samples (names, labels) as the first's.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    ports: { type: 'string', default: '10000' },
    scrapes: { type: 'string', default: '10' },
    root: { type: 'string', multiple: true },
  },
});
const PORTS = Number(values.ports);
const SCRAPES = Number(values.scrapes);
if (!Number.isInteger(PORTS) || PORTS < 1 || PORTS > 60_000) throw new Error('--ports must be an integer from 1 to 60000');
if (!Number.isInteger(SCRAPES) || SCRAPES < 1 || SCRAPES > 1000) throw new Error('--scrapes must be an integer from 1 to 1000');
const ROOTS = (values.root ?? [path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')]).map((r) => path.resolve(r));

function manifests(n: number): string {
  const docs: string[] = [];
  for (let i = 0; i < n; i++) {
    const ip = `127.101.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
    docs.push(
      `apiVersion: v1\nkind: Service\nmetadata: {name: svc-${i}, namespace: bench}\nspec:\n  type: ClusterIP\n  clusterIP: ${ip}\n  ports: [{name: http, protocol: TCP, port: 7100, targetPort: 8080}]`,
      `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: svc-${i}-0, namespace: bench, labels: {kubernetes.io/service-name: svc-${i}}}\naddressType: IPv4\nports: [{name: http, protocol: TCP, port: 8080}]\nendpoints: [{addresses: ["127.0.0.1"], conditions: {ready: true}}]`,
    );
  }
  return `${docs.join('\n---\n')}\n`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

/** The sample names and labels of a text, in order: what must not change between builds. */
function sampleKeys(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('process_') && !l.startsWith('nodejs_'))
    .map((l) => l.slice(0, l.lastIndexOf(' ')));
}

interface Result {
  readonly root: string;
  readonly bytes: number;
  readonly wall_ms: number;
  readonly cpu_ms: number;
  readonly stall_ms: number;
  readonly keys: string[];
}

async function measure(root: string, dir: string): Promise<Result> {
  const { Agent } = (await import(path.join(root, 'dist/lib/agent/agent.js'))) as typeof import('../lib/agent/agent.js');
  const { ManifestSource } = (await import(path.join(root, 'dist/lib/source/manifest-source.js'))) as typeof import('../lib/source/manifest-source.js');
  const { Metrics } = (await import(path.join(root, 'dist/lib/server/metrics.js'))) as typeof import('../lib/server/metrics.js');
  const { configureLogging } = (await import(path.join(root, 'dist/lib/log.js'))) as typeof import('../lib/log.js');
  configureLogging('warn', 'text');
  const agent = new Agent({
    config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 1000, syncPeriodMs: 3_600_000, minSyncPeriodMs: 1000 },
    source: new ManifestSource({ paths: [dir] }),
  });
  const metrics = new Metrics({ agent });
  try {
    await agent.start();
    if (agent.status().filter((s) => s.listening.length > 0).length !== PORTS) throw new Error(`${root}: not every port listens`);
    const first = await metrics.render(); // warm-up, untimed
    const wall: number[] = [];
    const cpu: number[] = [];
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    for (let i = 0; i < SCRAPES; i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await metrics.render();
      wall.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
      // The loop's delay is recorded when its timer runs: let it run between scrapes.
      await sleep(20);
    }
    h.disable();
    return { root, bytes: first.length, wall_ms: median(wall), cpu_ms: median(cpu), stall_ms: h.max / 1e6, keys: sampleKeys(first) };
  } finally {
    metrics.close();
    await agent.close();
  }
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-scrape-'));
try {
  await writeFile(path.join(dir, 'services.yaml'), manifests(PORTS));
  let reference: string[] | undefined;
  for (const root of ROOTS) {
    const { keys, ...r } = await measure(root, dir);
    if (reference === undefined) reference = keys;
    else if (keys.length !== reference.length || keys.some((k, i) => k !== reference![i])) throw new Error(`${root}: its samples differ from those of ${ROOTS[0]}`);
    const f = (n: number): string => n.toFixed(1);
    console.log(`${PORTS} ports, ${SCRAPES} scrapes, ${r.root}: ${r.bytes} bytes; per scrape (median) wall ${f(r.wall_ms)} ms, CPU ${f(r.cpu_ms)} ms; longest event-loop stall ${f(r.stall_ms)} ms`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
