import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { request } from 'undici';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { tcpEcho, tcpRequest, udpEcho, udpRequest } from '../helpers/backends.js';
import { CLI, START_TIMEOUT_MS } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * Descriptor exhaustion: the real CLI under a low open-file limit (prlimit), flooded with more
 * clients than it has descriptors. Running out must be counted and logged as the process's own
 * shortage, never as a failure of the healthy endpoint, and the health and metrics servers must
 * keep answering.
 */

const ip = loopbackBlock(211);
const NOFILE = 256;

interface Proxy {
  stderr(): string;
  alive(): boolean;
  health: string;
  metrics: string;
}

async function startProxy(t: ExecutionContext, files: Record<string, string>, extra: string[] = []): Promise<Proxy> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-exhaust-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const [name, yaml] of Object.entries(files)) await writeFile(path.join(dir, name), yaml);
  // prlimit sets the limit and then execs node: the pid is the agent's.
  const child = spawn(
    'prlimit',
    [`--nofile=${NOFILE}:${NOFILE}`, process.execPath, CLI, '--manifests', dir, '--healthz-bind-address', '127.0.0.1:0', '--metrics-bind-address', '127.0.0.1:0', '--log-format', 'json', ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  t.teardown(() => void child.kill('SIGKILL'));
  const servers = await waitFor(
    'both servers serving',
    () => {
      const found = new Map<string, string>();
      for (const line of err.split('\n')) {
        if (!line.includes('"serving"')) continue;
        const l = JSON.parse(line) as { server: string; address: string };
        found.set(l.server, l.address);
      }
      return found.size === 2 ? found : undefined;
    },
    START_TIMEOUT_MS,
  );
  return { stderr: () => err, alive: () => child.exitCode === null && child.signalCode === null, health: servers.get('healthz')!, metrics: servers.get('metrics')! };
}

/** A fresh connection per request (reset): each one needs a descriptor of the server's. */
async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await request(url, { reset: true, headersTimeout: 5000, bodyTimeout: 5000 });
  return { status: res.statusCode, body: await res.body.text() };
}

function metric(text: string, name: string, service: string, protocol: string): number | undefined {
  const m = new RegExp(`^kube_userspace_proxy_${name}\\{namespace="default",service="${service}",port="p",protocol="${protocol}"\\} (\\S+)$`, 'm').exec(text);
  return m === null ? undefined : Number(m[1]);
}

function logLines(text: string, pattern: RegExp): number {
  return text.split('\n').filter((l) => pattern.test(l)).length;
}

/** Opens n TCP connections to host:port at most `parallel` at a time, each sending a byte; resolves when each was echoed (held open) or closed. */
async function flood(host: string, port: number, n: number, parallel: number): Promise<{ sockets: net.Socket[]; echoed: number; refused: number }> {
  const sockets: net.Socket[] = [];
  let echoed = 0;
  let refused = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const s = net.connect({ host, port });
      sockets.push(s);
      let done = false;
      const finish = (ok: boolean): void => {
        if (done) return;
        done = true;
        if (ok) echoed++;
        else refused++;
        resolve();
      };
      s.setTimeout(10_000, () => {
        s.destroy();
        finish(false);
      });
      s.on('connect', () => s.write('x'));
      s.once('data', () => finish(true));
      s.on('error', () => finish(false));
      s.on('close', () => finish(false));
    });
  for (let i = 0; i < n; i += parallel) {
    await Promise.all(Array.from({ length: Math.min(parallel, n - i) }, one));
  }
  return { sockets, echoed, refused };
}

const tcpFlood = test.macro(async (t, workers: number) => {
  const pod = await tcpEcho(ip(100 + workers));
  t.teardown(() => pod.close());
  const svc = ip(workers);
  const proxy = await startProxy(
    t,
    {
      'svc.yaml': serviceYaml('flood', svc, [{ name: 'p', port: 8080 }]),
      'eps.yaml': sliceYaml('flood', 'flood-0', [{ name: 'p', port: pod.port }], [{ ip: pod.host }]),
    },
    ['--workers', String(workers)],
  );
  t.regex(proxy.stderr(), new RegExp(`"descriptor budget".*"openFileLimit":${NOFILE}.*"udpMaxSessions":${NOFILE / 4},`));
  await waitFor('service answering', async () => (await tcpRequest(svc, 8080, 'a')).toString() === 'a', START_TIMEOUT_MS);

  // Held open, so that the descriptors stay taken for the whole flood.
  const { sockets, echoed, refused } = await flood(svc, 8080, 1000, 100);
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  t.true(echoed > 0, 'some clients are served');
  t.true(refused > 0, 'the rest are refused');
  // While every budgeted descriptor is taken, the servers still answer on fresh connections.
  t.is((await get(`${proxy.health}/healthz`)).status, 200);
  const during = (await get(`${proxy.metrics}/metrics`)).body;
  t.true(proxy.alive());
  t.true((metric(during, 'local_resource_errors_total', 'flood', 'TCP') ?? 0) > 0, 'local resource errors are counted');
  t.is(metric(during, 'dial_failures_total', 'flood', 'TCP'), 0, 'the healthy endpoint had no dial failure');
  t.is(metric(during, 'dial_give_ups_total', 'flood', 'TCP'), 0);

  for (const s of sockets) s.destroy();
  // The endpoint was never backed off: once the descriptors are back, the next client gets through.
  await waitFor('a new connection after the flood', async () => (await tcpRequest(svc, 8080, 'after', 2000)).toString() === 'after', 10_000);
  const after = (await get(`${proxy.metrics}/metrics`)).body;
  t.is(metric(after, 'dial_failures_total', 'flood', 'TCP'), 0);
  t.true(proxy.alive());
  // Logged, and rate-limited: a handful of lines (per process) for hundreds of refusals.
  const lines = logLines(proxy.stderr(), /descriptor budget reached|out of local resources/);
  t.true(lines >= 1, 'the shortage is logged');
  t.true(lines <= 6 * workers, `at most a few lines about it, got ${lines}`);
  t.log(`served ${echoed}, refused ${refused}, ${lines} log lines, local_resource_errors_total ${metric(during, 'local_resource_errors_total', 'flood', 'TCP')}`);
});

test(`TCP: 1,000 clients at nofile ${NOFILE}: refused and counted as local resource errors, the endpoint never blamed`, tcpFlood, 1);
// Every process has the limit, and a budget of its own.
test(`TCP with --workers 2: the same in every process`, tcpFlood, 2);

test(`UDP: 600 sources at nofile ${NOFILE} with --udp-max-sessions above the budget: counted, the endpoint never blamed`, async (t) => {
  const pod = await udpEcho(ip(110));
  t.teardown(() => pod.close());
  const proxy = await startProxy(
    t,
    {
      'svc.yaml': serviceYaml('dns', ip(10), [{ name: 'p', port: 5353, protocol: 'UDP' }]),
      'eps.yaml': sliceYaml('dns', 'dns-0', [{ name: 'p', port: pod.port, protocol: 'UDP' }], [{ ip: pod.host }]),
    },
    // The old default: far above what 256 descriptors hold.
    ['--udp-max-sessions', '65536'],
  );
  t.regex(proxy.stderr(), /--udp-max-sessions is above what the descriptor budget holds/);
  await waitFor('service answering', async () => (await udpRequest(ip(10), 5353, 'a', 1000)).toString() === 'a', START_TIMEOUT_MS);

  // 600 sources, each its own socket (and so its own session), 100 at a time, all kept until the end.
  const sources: dgram.Socket[] = [];
  t.teardown(() => sources.forEach((s) => s.close()));
  let answered = 0;
  for (let i = 0; i < 600; i += 100) {
    await Promise.all(
      Array.from({ length: 100 }, () => {
        const s = dgram.createSocket('udp4');
        sources.push(s);
        return new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2000);
          s.once('message', () => {
            answered++;
            clearTimeout(timer);
            resolve();
          });
          s.send('q', 5353, ip(10));
        });
      }),
    );
  }
  t.is((await get(`${proxy.health}/healthz`)).status, 200);
  const during = (await get(`${proxy.metrics}/metrics`)).body;
  t.true(proxy.alive());
  t.true(answered > 0);
  t.true((metric(during, 'local_resource_errors_total', 'dns', 'UDP') ?? 0) > 0, 'local resource errors are counted');
  t.is(metric(during, 'dial_failures_total', 'dns', 'UDP'), 0, 'the healthy endpoint had no upstream error');
  const sessions = metric(during, 'udp_sessions', 'dns', 'UDP') ?? Infinity;
  t.true(sessions <= NOFILE / 2, `sessions stay within the budget, got ${sessions}`);
  // Not backed off, and room is made: a new source is answered at once.
  t.is((await udpRequest(ip(10), 5353, 'after', 2000)).toString(), 'after');
  const lines = logLines(proxy.stderr(), /descriptor budget reached|out of local resources/);
  t.true(lines >= 1 && lines <= 6, `a few rate-limited lines, got ${lines}`);
  t.log(`answered ${answered}/600, ${sessions} sessions, ${lines} log lines, local_resource_errors_total ${metric(during, 'local_resource_errors_total', 'dns', 'UDP')}`);
});
