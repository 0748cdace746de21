import type { Worker } from 'node:worker_threads';
import { ManifestError } from '../errors.js';
import { returnFreedMemory } from '../internals/freed-memory.js';
import { logger } from '../log.js';
import { parseManifest } from './manifest-parser.js';
import type { ClassifyOptions, ManifestEntry } from './manifest-parser.js';
import type { ParseReply, ParseRequest, ReadyReply } from './manifest-parse-messages.js';
import { entriesFromJson } from './manifest-parse-wire.js';
import { DEFAULT_PARSE_MEMORY_LIMIT_MB, spawnManifestParseWorker, takePrestartedManifestParseThread } from './manifest-parse-spawn.js';

const log = logger('manifests');

export interface ManifestParseThreadOptions {
  /** A file whose parse takes longer is refused, and the thread replaced (default 30 s). */
  readonly timeLimitMs?: number;
  /** Heap of the parse thread; a file that needs more is refused, and the thread replaced (default 512 MB). */
  readonly memoryLimitMb?: number;
}

export const DEFAULT_PARSE_TIME_LIMIT_MS = 30_000;
/**
 * Files up to this size are read on the main thread: the worst reader-slow text measured here
 * (90-deep flow sequences) costs about 2-5 ms per KiB, so 16 KiB blocks the event loop for tens of
 * milliseconds at most, less than the round trip to the thread under load, which a manifest edit
 * would otherwise pay on every change (ordinary manifests are a few KiB).
 */
export const INLINE_PARSE_MAX_BYTES = 16 * 1024;

interface Pending {
  readonly id: number;
  readonly request: ParseRequest;
  readonly resolve: (entries: ManifestEntry[]) => void;
  readonly reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * parseManifest on a worker thread, so that reading a file never stops the data path.
 *
 * Measured on the 2-core test node (load ~10), main thread: a 4.5 MB Service nested 3,000 block
 * sequences deep blocked the event loop for 40 s; 100,000 nested flow mappings (500 KB) for 4.6 s;
 * even a plain file of 10,000 Services (2.5 MB) for 1.3-1.9 s, and files within the nesting
 * limit but built to be slow (4 MB of 64-deep flow sequences) for 5.6 s. The limits of
 * manifest-limits.ts turn the first two into a 17 ms scan, but no limit that lets real files
 * through bounds the last two: only moving the parse off the event loop does. With both, the
 * largest event-loop delay while any of those files loads stays in the tens of milliseconds (the
 * copy of the result is all that is left on the main thread). The limits stay: they
 * give a clear reason at once, where a time limit would spend a core for 30 s to say less.
 *
 * One thread reads the files in the order they come, one at a time; a file may be sent while the
 * one before it is read, so that the thread goes on to it without waiting for the main thread to
 * take the result (on a start-up from 10 files, the thread was otherwise idle a third of the time).
 * A parse over the time limit (counted from when the thread starts it), or one that runs out of
 * the thread's heap, ends the thread and rejects with ManifestError; the files sent after it go to
 * a new thread. Where no thread can be started the file is read on the main thread.
 */
export class ManifestParseThread {
  readonly #timeLimitMs: number;
  readonly #memoryLimitMb: number;
  #worker: Worker | undefined;
  /** The thread has loaded its modules (its start-up does not count against the time limit). */
  #online = false;
  /** Sent to the thread, in order: the first is the one it reads. */
  #pending: Pending[] = [];
  #nextId = 1;
  #closed = false;

  constructor(options: ManifestParseThreadOptions = {}) {
    this.#timeLimitMs = options.timeLimitMs ?? DEFAULT_PARSE_TIME_LIMIT_MS;
    this.#memoryLimitMb = options.memoryLimitMb ?? DEFAULT_PARSE_MEMORY_LIMIT_MB;
  }

  /** The entries of one file, as parseManifest gives them; rejects with ManifestError over a limit. */
  parse(text: string, file: string, options: ClassifyOptions = {}): Promise<ManifestEntry[]> {
    if (this.#closed) return Promise.reject(new ManifestError(file, 'manifest parse thread closed'));
    if (text.length <= INLINE_PARSE_MAX_BYTES) return Promise.resolve(parseManifest(text, file, undefined, options));
    return new Promise<ManifestEntry[]>((resolve, reject) => {
      const id = this.#nextId++;
      this.#send({ id, request: { id, text, fileName: file, options, json: true }, resolve, reject, timer: undefined });
    });
  }

  /**
   * Ends the thread if no parse is waiting; the next parse starts a new one. A thread kept idle
   * holds its heap, sized by the largest file it read: after a start-up from 10 files of 1,000
   * Services, about 60 MiB of RSS for nothing, against a new thread's start (tens of ms, off the
   * event loop) on the next large edit. Small edits never need it (INLINE_PARSE_MAX_BYTES).
   */
  release(): void {
    if (this.#closed || this.#pending.length > 0) return;
    const worker = this.#worker;
    this.#worker = undefined;
    // Its heap goes with it; what it freed in C stays in its malloc arena until given back.
    void worker?.terminate().then(returnFreedMemory);
  }

  /** Ends the thread; parses waiting reject. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#end(new ManifestError(this.#pending[0]?.request.fileName ?? '', 'manifest parse thread closed'));
  }

  /** Sends a parse to the thread (starting one if needed), or reads it here when none can start. */
  #send(pending: Pending): void {
    const { text, fileName, options } = pending.request;
    if (this.#closed) {
      pending.reject(new ManifestError(fileName, 'manifest parse thread closed'));
      return;
    }
    const worker = this.#thread();
    if (!worker) {
      try {
        pending.resolve(parseManifest(text, fileName, undefined, options));
      } catch (err) {
        pending.reject(err as Error);
      }
      return;
    }
    this.#pending.push(pending);
    this.#startClock();
    worker.ref();
    worker.postMessage(pending.request);
  }

  /** The time limit of the parse the thread reads now, once the thread is up. */
  #startClock(): void {
    const pending = this.#pending[0];
    if (!pending || pending.timer || !this.#online) return;
    pending.timer = setTimeout(() => {
      this.#end(new ManifestError(pending.request.fileName, `parsing took over ${this.#timeLimitMs} ms, the limit for a manifest; not parsed`));
    }, this.#timeLimitMs);
  }

  #thread(): Worker | undefined {
    if (this.#worker) return this.#worker;
    // At start-up, the thread bin/ started before the program loaded (see prestartManifestParseThread).
    const prestarted = takePrestartedManifestParseThread(this.#memoryLimitMb);
    let worker: Worker;
    try {
      worker = prestarted?.worker ?? spawnManifestParseWorker(this.#memoryLimitMb);
    } catch (err) {
      log.warn('cannot start manifest parse thread, parsing on the main thread', { error: (err as Error).message });
      return undefined;
    }
    worker.unref();
    this.#online = prestarted?.online ?? false;
    worker.on('message', (reply: ParseReply | ReadyReply) => {
      if (this.#worker !== worker) return;
      if ('ready' in reply) {
        this.#online = true;
        this.#startClock();
        return;
      }
      const pending = this.#pending[0];
      if (!pending || pending.id !== reply.id) return;
      this.#pending.shift();
      clearTimeout(pending.timer);
      if (this.#pending.length === 0) worker.unref();
      this.#startClock();
      if ('json' in reply) pending.resolve(entriesFromJson(reply.json));
      else if ('entries' in reply) pending.resolve(reply.entries);
      else pending.reject(new ManifestError(pending.request.fileName, `cannot be parsed: ${reply.error}`));
    });
    worker.on('error', (err: Error & { code?: string }) => {
      if (this.#worker !== worker) return;
      const file = this.#pending[0]?.request.fileName ?? '';
      const reason = err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `parsing needed over ${this.#memoryLimitMb} MB, the limit for a manifest; not parsed` : `parse thread failed: ${err.message}`;
      this.#end(new ManifestError(file, reason));
    });
    worker.on('exit', () => {
      if (this.#worker === worker) this.#end(new ManifestError(this.#pending[0]?.request.fileName ?? '', 'manifest parse thread exited'));
    });
    this.#worker = worker;
    return worker;
  }

  /**
   * Ends the thread and rejects the parse it was reading with `err`; the parses sent after it go
   * to a new thread (once closed, they reject too).
   */
  #end(err: ManifestError): void {
    const worker = this.#worker;
    this.#worker = undefined;
    void worker?.terminate();
    const [failed, ...rest] = this.#pending;
    this.#pending = [];
    if (failed) {
      clearTimeout(failed.timer);
      failed.reject(err);
    }
    for (const pending of rest) this.#send(pending);
  }
}
