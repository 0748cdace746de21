import net from 'node:net';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml, startAgent } from '../helpers/agent-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

// One loopback block per test: 127.77.<block>.1 is the portal, .101-.103 the endpoints, .50+ clients.
const blocks = { next: 226 };

/** A backend that writes its name and keeps the connection open until the client closes it. */
async function namedHolder(t: ExecutionContext, name: string, host: string): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.on('end', () => s.end());
    s.write(name);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as net.AddressInfo).port;
}

interface Held {
  readonly name: string;
  readonly socket: net.Socket;
}

/** Connects (from localAddress when given), reads the backend's name, and keeps the connection open. */
function connect(t: ExecutionContext, host: string, port: number, localAddress?: string): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    t.teardown(() => socket.destroy());
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no name from ${host}:${port} in 5s`));
    }, 5000);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('data', (chunk) => {
      clearTimeout(timer);
      resolve({ name: chunk.toString(), socket });
    });
  });
}

async function closeHeld(h: Held): Promise<void> {
  await new Promise<void>((resolve) => {
    h.socket.once('close', () => resolve());
    h.socket.end();
  });
}

function annotate(yaml: string, annotations: Record<string, string>): string {
  const lines = Object.entries(annotations).map(([k, v]) => `    ${k}: "${v}"`);
  return yaml.replace(/^(  namespace: .*)$/m, `$1\n  annotations:\n${lines.join('\n')}`);
}

/** Three named endpoints (a, b, c) behind one service port, scheduled as annotated. */
async function threeEndpoints(t: ExecutionContext, annotations: Record<string, string>, affinityTimeout?: number) {
  const ip = loopbackBlock(blocks.next++);
  const names = ['a', 'b', 'c'];
  const ports = await Promise.all(names.map((n, i) => namedHolder(t, n, ip(101 + i))));
  // One slice per endpoint: each may listen on its own port.
  const slices = names.map((n, i) => sliceYaml('web', `web-${n}`, [{ name: 'p', port: ports[i]! }], [{ ip: ip(101 + i) }])).join('---\n');
  const f = await startAgent(t, {
    'svc.yaml': annotate(serviceYaml('web', ip(1), [{ name: 'p', port: 8080 }], affinityTimeout !== undefined ? { affinityTimeout } : {}), annotations),
    'eps.yaml': slices,
  });
  await waitFor('three endpoints', () => f.agent.status()[0]?.endpoints.length === 3);
  const nameOf = new Map(names.map((n, i) => [`${ip(101 + i)}:${ports[i]}`, n]));
  const active = (name: string): number => {
    const stats = f.agent.status()[0]?.stats;
    for (const [key, es] of stats?.endpoints ?? []) if (nameOf.get(key) === name) return es.active;
    return 0;
  };
  return { ip, agent: f.agent, active };
}

test('lc over real sockets: each new connection goes to the endpoint with the fewest open', async (t) => {
  const { ip, agent, active } = await threeEndpoints(t, { 'kube-userspace-proxy.io/scheduler': 'lc' });
  t.is(agent.status()[0]!.scheduler, 'lc');
  const held: Held[] = [];
  for (let i = 0; i < 6; i++) held.push(await connect(t, ip(1), 8080));
  const count = (hs: readonly Held[]): Record<string, number> => hs.reduce<Record<string, number>>((m, h) => ((m[h.name] = (m[h.name] ?? 0) + 1), m), {});
  t.deepEqual(count(held), { a: 2, b: 2, c: 2 });
  // Keep the connections of the endpoint a rotation would pick next; close the others'.
  const busy = held[0]!.name;
  for (const h of held.filter((x) => x.name !== busy)) await closeHeld(h);
  await waitFor('closed connections leave the active counts', () => ['a', 'b', 'c'].every((n) => active(n) === (n === busy ? 2 : 0)));
  const next = [await connect(t, ip(1), 8080), await connect(t, ip(1), 8080), await connect(t, ip(1), 8080), await connect(t, ip(1), 8080)];
  // 2/0/0 → the two idle endpoints; 2/1/1 → both again; nothing reaches the busy one.
  t.false(
    next.some((h) => h.name === busy),
    `picks ${next.map((h) => h.name).join(',')} with ${busy} busy`,
  );
  t.deepEqual(Object.values(count(next)), [2, 2]);
  t.is((await connect(t, ip(1), 8080)).name.length, 1);
});

test('sh and mh over real sockets: a client keeps its endpoint; several clients use several endpoints', async (t) => {
  for (const scheduler of ['sh', 'mh'] as const) {
    const { ip, agent } = await threeEndpoints(t, { 'kube-userspace-proxy.io/scheduler': scheduler });
    t.is(agent.status()[0]!.scheduler, scheduler);
    const used = new Set<string>();
    for (let c = 0; c < 8; c++) {
      const from = ip(50 + c);
      const names = new Set<string>();
      for (let k = 0; k < 4; k++) {
        const h = await connect(t, ip(1), 8080, from);
        names.add(h.name);
        await closeHeld(h);
      }
      t.is(names.size, 1, `${scheduler}: client ${from} reached ${[...names].join(', ')}`);
      used.add([...names][0]!);
    }
    t.true(used.size > 1, `${scheduler}: eight clients all on ${[...used].join(', ')}`);
  }
});

test('weighted rr over real sockets: shares as declared by address', async (t) => {
  const block = blocks.next;
  const endpointB = loopbackBlock(block)(102);
  const { ip, agent } = await threeEndpoints(t, { 'kube-userspace-proxy.io/scheduler': 'rr', 'kube-userspace-proxy.io/weights': `${endpointB}=4` });
  t.is(agent.status()[0]!.scheduler, 'rr');
  const counts: Record<string, number> = {};
  for (let i = 0; i < 12; i++) {
    const h = await connect(t, ip(1), 8080);
    counts[h.name] = (counts[h.name] ?? 0) + 1;
    await closeHeld(h);
  }
  t.deepEqual(counts, { a: 2, b: 8, c: 2 });
});

test('ClientIP affinity wins over lc over real sockets: a pinned client stays on its busy endpoint', async (t) => {
  const { ip, active } = await threeEndpoints(t, { 'kube-userspace-proxy.io/scheduler': 'lc' }, 600);
  const pinned = await connect(t, ip(1), 8080, ip(50));
  for (let k = 0; k < 3; k++) t.is((await connect(t, ip(1), 8080, ip(50))).name, pinned.name);
  t.is(active(pinned.name), 4);
  // Another client is scheduled by lc: away from the busy endpoint.
  t.not((await connect(t, ip(1), 8080, ip(51))).name, pinned.name);
});
