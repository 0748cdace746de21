import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { exchange } from './fixtures/datagram-exchange.js';
import type { ExchangeResult } from './fixtures/datagram-exchange.js';

const child = fileURLToPath(new URL('fixtures/datagram-exchange-child.js', import.meta.url));

/** exchange() in a child process with extra node flags and environment. */
function inChild(count: number, nodeFlags: string[], env: Record<string, string>): Promise<{ result: ExchangeResult; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...nodeFlags, child, String(count)], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve({ result: JSON.parse(stdout.trim().split('\n').pop() as string) as ExchangeResult, stderr });
    });
  });
}

test('on this Node the UDP handles are driven directly: datagrams of 0 to 60,000 bytes arrive intact and in order, without message events', async (t) => {
  const r = await exchange(600);
  t.true(r.handlesInUse, `Node ${process.version}: the probe found no usable UDP handle`);
  t.is(r.intact, 600);
  t.is(r.events, 0);
});

test('a connected socket driven directly still reports an ICMP port unreachable as an error event', async (t) => {
  const r = await exchange(1);
  t.is(r.refusedCode, 'ECONNREFUSED');
});

test('sends that libuv queues (node --test-udp-no-try-send) keep their datagrams until sent', async (t) => {
  const { result } = await inChild(600, ['--test-udp-no-try-send'], {});
  t.true(result.handlesInUse);
  t.is(result.intact, 600);
  t.is(result.refusedCode, 'ECONNREFUSED');
});

test('KUP_UDP_HANDLES=0 forces dgram: the same exchange passes through send() and message events', async (t) => {
  const { result } = await inChild(600, [], { KUP_UDP_HANDLES: '0' });
  t.false(result.handlesInUse);
  t.is(result.intact, 600);
  t.is(result.events, 1200);
  t.is(result.refusedCode, 'ECONNREFUSED');
});

test('no deprecation warning, even with --pending-deprecation', async (t) => {
  const { result, stderr } = await inChild(10, ['--pending-deprecation'], {});
  t.true(result.handlesInUse);
  t.false(/DeprecationWarning|DEP0/.test(stderr), stderr);
});
