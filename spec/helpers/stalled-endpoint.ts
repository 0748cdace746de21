import net from 'node:net';
import { Worker } from 'node:worker_threads';

/** A TCP port whose connects hang (SYNs are dropped), as a black-holed endpoint's would. */
export interface StalledEndpoint {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

// Runs in a worker thread: listens with a backlog of 1 and then blocks its own event loop, so the
// socket is never accept()ed from. Node accepts eagerly on any thread whose loop runs, which is why
// this cannot be done on the test's own thread.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const flag = new Int32Array(workerData.flag);
const server = net.createServer(() => {});
server.on('error', (err) => parentPort.postMessage({ error: err.message }));
server.listen({ host: workerData.host, port: 0, backlog: 1 }, () => {
  parentPort.postMessage({ port: server.address().port });
  Atomics.wait(flag, 0, 0, workerData.maxBlockMs);
  process.exit(0);
});
`;

/**
 * Starts a listener that never accepts and fills its accept queue with a few raw connections, so
 * that further connect() attempts get no SYN-ACK and hang until their timeout. Bounded: at most
 * 8 filler connections, each given 300 ms; the worker unblocks itself after maxBlockMs anyway.
 */
export async function stalledEndpoint(host = '127.0.0.1', maxBlockMs = 60_000): Promise<StalledEndpoint> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { flag: flag.buffer, host, maxBlockMs } });
  const fillers: net.Socket[] = [];
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      for (const s of fillers) s.destroy();
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      await worker.terminate();
    })();
    return closed;
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      worker.once('message', (m: { port?: number; error?: string }) => (m.port !== undefined ? resolve(m.port) : reject(new Error(m.error))));
      worker.once('error', reject);
    });
    for (let i = 0; i < 8; i++) {
      const s = net.connect({ host, port });
      s.on('error', () => {});
      fillers.push(s);
      const connected = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 300);
        s.once('connect', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!connected) return { host, port, close };
    }
    throw new Error('the accept queue of the stalled endpoint never filled up');
  } catch (err) {
    await close();
    throw err;
  }
}
