import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { logger } from '../log.js';
import { BATCH_MAX, MessageBatch } from './message-batch.js';
import type { StatsSnapshot } from './stats-snapshot.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';

const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));
/** A worker asked to exit that has not within this long is killed. */
const EXIT_TIMEOUT_MS = 5_000;
/** How long a batch's reply may take: a base plus a little per message (binding ports takes time). */
const BATCH_REPLY_BASE_MS = 5_000;
const BATCH_REPLY_PER_MESSAGE_MS = 2;

const log = logger('workers');

/**
 * One data-path worker process as WorkerPool sees it: the child, whether it serves yet, its last
 * counters, and the replies awaited from it. A reply is matched to its request by a key: `ready`,
 * `l:<socket id>` for 'listening', `b:<batch>` for 'batched', `s:<seq>` for 'done' and 'stats'.
 */
export class WorkerProcess {
  readonly index: number;
  readonly child: ChildProcess;
  /** Given the current state and serving: it gets every change from now on. */
  ready = false;
  /** The last counters it reported, per shared socket. */
  snapshots = new Map<number, StatsSnapshot>();
  readonly #waiting = new Map<string, (reply: FromWorker | undefined) => void>();
  /** Messages posted and not yet sent, in order. */
  #outbox = new MessageBatch();
  #batchSeq = 1;

  /** Forks worker-main; `onMessage` gets what no request awaits, `onExit` the exit. */
  constructor(index: number, onMessage: (m: FromWorker) => void, onExit: (code: number | null, signal: NodeJS.Signals | null) => void) {
    this.index = index;
    this.child = fork(WORKER_MAIN, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    this.child.on('message', (m: FromWorker) => {
      if (!this.#settle(m)) onMessage(m);
    });
    // A send to a worker that just died: its 'exit' handles the rest.
    this.child.on('error', (err) => log.warn('worker channel error', { worker: index + 1, error: err.message }));
    this.child.once('exit', (code, signal) => {
      for (const resolve of this.#waiting.values()) resolve(undefined);
      this.#waiting.clear();
      onExit(code, signal);
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends a message (and a handle with it) after every one posted before it; a worker that is gone is skipped. */
  send(message: ToWorker, handle?: object): void {
    this.flush();
    this.#write(message, handle);
  }

  /** Queues a message to go out with the others posted in this turn of the loop (see MessageBatch). */
  post(message: ToWorker, awaitsReply: boolean): Promise<void> {
    if (this.#outbox.messages.length >= BATCH_MAX) this.flush();
    if (this.#outbox.messages.length === 0) setImmediate(() => this.flush());
    return this.#outbox.add(message, awaitsReply);
  }

  /** Sends what was posted, as one message. */
  flush(): void {
    const batch = this.#outbox;
    if (batch.messages.length === 0) return;
    this.#outbox = new MessageBatch();
    const { messages } = batch;
    if (!batch.awaitsReply) {
      this.#write({ t: 'batch', messages });
      return;
    }
    const seq = this.#batchSeq++;
    const timeoutMs = BATCH_REPLY_BASE_MS + messages.length * BATCH_REPLY_PER_MESSAGE_MS;
    void this.request(`b:${seq}`, timeoutMs, () => this.#write({ t: 'batch', seq, messages })).then((reply) => {
      if (reply?.t === 'batched') {
        for (const [service, error] of reply.failed ?? []) log.error('worker cannot accept on a listener', { worker: this.index + 1, service, error });
      }
      batch.settle();
    });
  }

  #write(message: ToWorker, handle?: object): void {
    if (!this.child.connected) return;
    this.child.send(message, handle as never, (err) => {
      if (err) log.debug('cannot reach worker', { worker: this.index + 1, error: err.message });
    });
  }

  /** Runs `send` and resolves with the reply under `key`, or undefined on timeout or exit. */
  request(key: string, timeoutMs: number, send: () => void): Promise<FromWorker | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(key);
        resolve(undefined);
      }, timeoutMs);
      this.#waiting.set(key, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      send();
    });
  }

  /** Lets it go: it resets what it still proxies and exits (killed if it has not within 5 s). */
  async stop(): Promise<void> {
    if (!this.running) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), EXIT_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  /** A reply: resolves the request awaiting it; false if none does. */
  #settle(m: FromWorker): boolean {
    if (m.t === 'udp-closed' || m.t === 'udp-stray') return false;
    const key = m.t === 'ready' ? 'ready' : m.t === 'listening' ? `l:${m.id}` : m.t === 'batched' ? `b:${m.seq}` : `s:${m.seq}`;
    const resolve = this.#waiting.get(key);
    if (resolve === undefined) return false;
    this.#waiting.delete(key);
    resolve(m);
    return true;
  }
}
