import net from 'node:net';
import type { ExecutionContext } from 'ava';
import { socketOwners } from './socket-owners.js';

/** A connection that has proxied one echo round trip, so it is established end to end. */
export async function echoConnection(t: ExecutionContext, host: string, port: number): Promise<net.Socket> {
  const s = net.connect({ host, port });
  t.teardown(() => void s.destroy());
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.once('data', () => resolve());
    s.write('x');
  });
  return s;
}

/** Opens echo connections until one is owned by `pid` (at most `max`, for at most 30 s); returns them all. */
export async function connectUntilOwnedBy(t: ExecutionContext, host: string, port: number, pid: number, max = 300): Promise<net.Socket[]> {
  const conns: net.Socket[] = [];
  const deadline = Date.now() + 30_000;
  while (conns.length < max && Date.now() < deadline) {
    conns.push(await echoConnection(t, host, port));
    if (socketOwners('tcp', host, port).includes(pid)) return conns;
  }
  throw new Error(`none of ${conns.length} connections was accepted by process ${pid}`);
}

/** Ends every connection and waits until each is closed. */
export async function closeAll(conns: net.Socket[]): Promise<void> {
  await Promise.all(
    conns.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.once('close', () => resolve());
          s.end();
        }),
    ),
  );
}
