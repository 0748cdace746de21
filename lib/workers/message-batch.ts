import type { ToWorker } from './worker-protocol.js';

/** Messages per batch: a worker takes each batch in one turn of its loop, so a long one is cut. */
export const BATCH_MAX = 1000;

/**
 * Messages for one worker gathered in a turn of the loop, to go out as one IPC message: 10,000
 * ports opened by a sync cost a few messages, not 10,000. Those that await the worker's answer
 * share one promise, settled once the batch is served (one per batch, not per message).
 */
export class MessageBatch {
  readonly messages: ToWorker[] = [];
  #replied: Promise<void> | undefined;
  #settle: () => void = () => {};

  /** Whether the worker is asked to answer once it has served the batch. */
  get awaitsReply(): boolean {
    return this.#replied !== undefined;
  }

  add(message: ToWorker, awaitsReply: boolean): Promise<void> {
    this.messages.push(message);
    if (!awaitsReply) return Promise.resolve();
    this.#replied ??= new Promise<void>((resolve) => {
      this.#settle = resolve;
    });
    return this.#replied;
  }

  /** The worker served it, or will not answer (timeout, exit). */
  settle(): void {
    this.#settle();
  }
}
