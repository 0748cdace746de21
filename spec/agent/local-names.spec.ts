import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { Agent } from '../../lib/agent/agent.js';
import { withLocalNames } from '../../lib/agent/local-names.js';
import { ManifestSource } from '../../lib/source/manifest-source.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { httpPathEcho, udpEcho, udpRequest } from '../helpers/backends.js';
import type { Backend } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait-for.js';

const run = promisify(execFile);
const HOSTS = "127.0.0.1\tlocalhost\n# a line of the user's\n";

interface Setup {
  readonly dir: string;
  readonly hostsFile: string;
  write(name: string, yaml: string): Promise<void>;
  remove(name: string): Promise<void>;
  /** A new agent over the same manifests, pool and hosts file (a restart); destroyed in teardown. */
  start(): Promise<Agent>;
}

/** Each test has a pool of its own: the same service names in two pools never share an address. */
async function setup(t: ExecutionContext, pool: string, files: Record<string, string>): Promise<Setup> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-names-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const manifests = path.join(dir, 'manifests');
  await import('node:fs/promises').then((fs) => fs.mkdir(manifests));
  const hostsFile = path.join(dir, 'hosts');
  await writeFile(hostsFile, HOSTS);
  const write = async (name: string, yaml: string): Promise<void> => {
    await writeFile(path.join(dir, `.${name}`), yaml);
    await rename(path.join(dir, `.${name}`), path.join(manifests, name));
  };
  for (const [name, yaml] of Object.entries(files)) await write(name, yaml);
  const start = async (): Promise<Agent> => {
    const source = withLocalNames(new ManifestSource({ paths: [manifests] }), { serviceIPPool: pool, hostsFile, clusterDomain: 'cluster.local', redirect: 'none', assignServiceIPs: undefined });
    const agent = new Agent({ config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 100, syncPeriodMs: 200, minSyncPeriodMs: 0 }, source });
    t.teardown(() => agent.destroy());
    await agent.start();
    return agent;
  };
  return { dir, hostsFile, write, remove: (name) => rm(path.join(manifests, name), { force: true }), start };
}

function service(name: string, backend: Backend, namespace = 'shop', clusterIP = '10.96.0.10', extra: { nodePort?: number } = {}): string {
  return (
    serviceYaml(name, clusterIP, [{ name: 'http', port: 8080, targetPort: backend.port, ...extra }], { namespace, ...(extra.nodePort ? { type: 'NodePort' } : {}) }) +
    '---\n' +
    sliceYaml(name, `${name}-1`, [{ name: 'http', port: backend.port }], [{ ip: '127.0.0.1' }], namespace)
  );
}

/** The address the hosts block gives a name, or undefined. */
async function addressOf(hostsFile: string, name: string): Promise<string | undefined> {
  const text = await readFile(hostsFile, 'utf8');
  for (const line of text.split('\n')) {
    const [ip, ...names] = line.split(/\s+/);
    if (names.includes(name)) return ip;
  }
  return undefined;
}

async function curl(url: string): Promise<string> {
  const { stdout } = await run('curl', ['-sS', '--max-time', '5', url]);
  return stdout;
}

test('curl reaches the backend at the pool address the hosts block names; status shows it as the portal; no ClusterIP or NodePort is listened on', async (t) => {
  const backend = await httpPathEcho('127.0.0.1', 0, 'web-0');
  t.teardown(() => backend.close());
  const s = await setup(t, '127.219.1.0/24', { 'web.yaml': service('web', backend, 'shop', '10.96.0.10', { nodePort: 31999 }) });
  const agent = await s.start();
  const ip = await waitFor('web in the hosts block', () => addressOf(s.hostsFile, 'web.shop.svc.cluster.local'));
  t.regex(ip, /^127\.219\.1\.\d+$/);
  t.is(await addressOf(s.hostsFile, 'web.shop'), ip);
  t.is(await addressOf(s.hostsFile, 'web'), ip);
  t.is(await curl(`http://${ip}:8080/hello`), 'hello');
  const [port] = agent.status();
  t.deepEqual(port!.portals, [`${ip}:8080`]);
  t.deepEqual(port!.listening, [{ host: ip, port: 8080 }]);
  t.is(port!.nodePort, 0, "a laptop does not open the cluster's NodePorts");
  t.true((await readFile(s.hostsFile, 'utf8')).startsWith(HOSTS));
});

test('UDP service ports listen at the pool address too', async (t) => {
  const backend = await udpEcho('127.0.0.1', 0);
  t.teardown(() => backend.close());
  const yaml =
    serviceYaml('dns', '10.96.0.53', [{ name: 'dns', port: 5353, protocol: 'UDP', targetPort: backend.port }], { namespace: 'kube-system' }) +
    '---\n' +
    sliceYaml('dns', 'dns-1', [{ name: 'dns', port: backend.port, protocol: 'UDP' }], [{ ip: '127.0.0.1' }], 'kube-system');
  const s = await setup(t, '127.219.2.0/24', { 'dns.yaml': yaml });
  await s.start();
  const ip = await waitFor('dns in the hosts block', () => addressOf(s.hostsFile, 'dns.kube-system'));
  t.is((await udpRequest(ip, 5353, 'ping')).toString(), 'ping');
});

test('every service keeps its address across a restart, colliding ones included', async (t) => {
  const backend = await httpPathEcho();
  t.teardown(() => backend.close());
  // 6 addresses for 5 services: these names' hashes collide (two pairs share a slot), and probing must give the same result again.
  const names = ['a', 'b', 'c', 'd', 'e'];
  const files = Object.fromEntries(names.map((n) => [`${n}.yaml`, service(n, backend)]));
  const s = await setup(t, '127.219.3.0/29', files);
  const first = await s.start();
  const before = await waitFor('all in the hosts block', async () => {
    const ips = await Promise.all(names.map((n) => addressOf(s.hostsFile, `${n}.shop`)));
    return ips.every((ip) => ip !== undefined) ? (ips as string[]) : undefined;
  });
  t.is(new Set(before).size, 5);
  first.destroy();
  t.is(await readFile(s.hostsFile, 'utf8'), HOSTS, 'destroy removed the block');
  await s.start();
  const after = await waitFor('all in the hosts block again', async () => {
    const ips = await Promise.all(names.map((n) => addressOf(s.hostsFile, `${n}.shop`)));
    return ips.every((ip) => ip !== undefined) ? (ips as string[]) : undefined;
  });
  t.deepEqual(after, before);
  for (const [i, ip] of after.entries()) t.is(await curl(`http://${ip}:8080/${names[i]}`), names[i]);
});

test('the hosts block follows the manifests: a new service appears, a deleted one goes, a name in two namespaces loses its bare name', async (t) => {
  const backend = await httpPathEcho();
  t.teardown(() => backend.close());
  const s = await setup(t, '127.219.4.0/24', { 'web.yaml': service('web', backend) });
  await s.start();
  await waitFor('web', () => addressOf(s.hostsFile, 'web'));
  await s.write('db.yaml', service('db', backend));
  const db = await waitFor('db added', () => addressOf(s.hostsFile, 'db.shop.svc.cluster.local'));
  t.is(await curl(`http://${db}:8080/db`), 'db');
  await s.write('web-blog.yaml', service('web', backend, 'blog'));
  await waitFor('web.blog added, bare web gone', async () => (await addressOf(s.hostsFile, 'web.blog')) !== undefined && (await addressOf(s.hostsFile, 'web')) === undefined);
  await s.remove('db.yaml');
  await waitFor('db removed', async () => (await addressOf(s.hostsFile, 'db.shop')) === undefined);
  t.true((await readFile(s.hostsFile, 'utf8')).startsWith(HOSTS));
});

test('a full pool: the service left over is not served; it gets an address and is served once another service goes', async (t) => {
  const backend = await httpPathEcho();
  t.teardown(() => backend.close());
  // A /30 holds two service addresses.
  const s = await setup(t, '127.219.5.0/30', { 'a.yaml': service('a', backend), 'b.yaml': service('b', backend), 'c.yaml': service('c', backend) });
  const agent = await s.start();
  await waitFor('two in the hosts block', async () => (await Promise.all(['a', 'b', 'c'].map((n) => addressOf(s.hostsFile, `${n}.shop`)))).filter(Boolean).length === 2);
  t.is(agent.status().length, 2);
  t.is(await addressOf(s.hostsFile, 'c.shop'), undefined, 'c comes last in sorted order');
  const a = (await addressOf(s.hostsFile, 'a.shop'))!;
  await s.remove('a.yaml');
  const c = await waitFor('c gets the address a freed', () => addressOf(s.hostsFile, 'c.shop'));
  t.is(c, a);
  await waitFor('c served', async () => (await curl(`http://${c}:8080/c`).catch(() => '')) === 'c');
  t.deepEqual(
    agent
      .status()
      .map((p) => p.spn)
      .sort(),
    ['shop/b:http', 'shop/c:http'],
  );
});

test('close() removes the block and leaves the rest of the file as it was', async (t) => {
  const backend = await httpPathEcho();
  t.teardown(() => backend.close());
  const s = await setup(t, '127.219.6.0/24', { 'web.yaml': service('web', backend) });
  const agent = await s.start();
  await waitFor('web', () => addressOf(s.hostsFile, 'web'));
  await agent.close();
  t.is(await readFile(s.hostsFile, 'utf8'), HOSTS);
});
