import net from 'node:net';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { PROXY_PROTOCOL_ANNOTATION } from '../../lib/model/proxy-protocol-annotation.js';
import { WorkerPool } from '../../lib/workers/worker-pool.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml, startAgent } from '../helpers/agent-fixture.js';
import { socketOwners } from '../helpers/socket-owners.js';
import { waitFor } from '../helpers/wait-for.js';

const ip = loopbackBlock(227);

/** A backend that answers the first line it gets (a v1 header, or the client's own line) with itself, and stays open. */
async function firstLine(t: ExecutionContext, host: string): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString('latin1');
      const end = got.indexOf('\r\n');
      if (end < 0) return;
      s.off('data', onData);
      s.write(got.slice(0, end + 2));
    };
    s.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen({ host, port: 0 }, resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

/** Connects from `from`, sends `line` if given, and resolves with the first line that comes back and the socket. */
function ask(t: ExecutionContext, host: string, port: number, from: string, line?: string): Promise<{ line: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, localAddress: from });
    t.teardown(() => socket.destroy());
    let got = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer')));
    socket.on('error', reject);
    socket.on('connect', () => {
      if (line !== undefined) socket.write(line);
    });
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.endsWith('\r\n')) {
        socket.setTimeout(0);
        resolve({ line: got, socket });
      }
    });
  });
}

function annotated(yaml: string, value: string | undefined): string {
  return value === undefined ? yaml : yaml.replace('metadata:\n', `metadata:\n  annotations:\n    ${PROXY_PROTOCOL_ANNOTATION}: "${value}"\n`);
}

test('with --workers 2, connections accepted by the workers carry the header too', async (t) => {
  const backendPort = await firstLine(t, ip(101));
  const workers = new WorkerPool({ workers: 2, logLevel: 'warn', logFormat: 'json', restartDelayMs: 50 });
  t.teardown(() => workers.destroy());
  await startAgent(
    t,
    {
      'svc.yaml': annotated(serviceYaml('pp', ip(1), [{ name: 'p', port: 7001 }]), 'v1'),
      'eps.yaml': sliceYaml('pp', 'pp-0', [{ name: 'p', port: backendPort }], [{ ip: ip(101) }]),
    },
    {},
    workers.balancer,
    workers,
  );
  await waitFor('a worker serves the port', async () => (await askOnce()).length > 0, 15_000);
  const pids = workers.pids();
  t.is(pids.length, 2);
  const seen = new Set<number>();
  const open: net.Socket[] = [];
  // Until each worker has accepted one (the kernel spreads them; bounded).
  for (let i = 0; i < 300 && !pids.every((p) => seen.has(p)); i++) {
    const from = ip(10 + (i % 50));
    const { line, socket } = await ask(t, ip(1), 7001, from);
    open.push(socket);
    t.is(line, `PROXY TCP4 ${from} ${ip(1)} ${socket.localPort} 7001\r\n`);
    for (const pid of socketOwners('tcp', ip(1), 7001)) seen.add(pid);
  }
  t.true(
    pids.every((p) => seen.has(p)),
    `accepted by ${[...seen].join(',')}, workers ${pids.join(',')}`,
  );
  for (const s of open) s.destroy();

  async function askOnce(): Promise<string> {
    try {
      return (await ask(t, ip(1), 7001, ip(9))).line;
    } catch {
      return '';
    }
  }
});

test('the annotation turns the header on and off; a bad value keeps the last good one', async (t) => {
  const backendPort = await firstLine(t, ip(102));
  const svc = (v: string | undefined): string => annotated(serviceYaml('pp2', ip(2), [{ name: 'p', port: 7002 }]), v);
  const fx = await startAgent(t, { 'svc.yaml': svc('v1'), 'eps.yaml': sliceYaml('pp2', 'pp2-0', [{ name: 'p', port: backendPort }], [{ ip: ip(102) }]) });
  await waitFor('listening', () => fx.agent.status().some((p) => p.listening.length > 0), 10_000);
  const first = await ask(t, ip(2), 7002, ip(20), 'hello\r\n');
  t.is(first.line, `PROXY TCP4 ${ip(20)} ${ip(2)} ${first.socket.localPort} 7002\r\n`);

  await fx.write('svc.yaml', svc('v3'));
  // The bad value is rejected; the header stays. (Nothing to poll for but the absence of a change.)
  await new Promise((r) => setTimeout(r, 600));
  const second = await ask(t, ip(2), 7002, ip(21), 'hello\r\n');
  t.true(second.line.startsWith(`PROXY TCP4 ${ip(21)} `));

  await fx.write('svc.yaml', svc(undefined));
  await waitFor('no header once the annotation is gone', async () => (await ask(t, ip(2), 7002, ip(22), 'hello\r\n')).line === 'hello\r\n', 10_000, 100);
});
