import { Worker } from 'node:worker_threads';

// Only node: modules here: this file is loaded first thing at start-up (see prestartManifestParseThread).

export const DEFAULT_PARSE_MEMORY_LIMIT_MB = 512;

/** What the parse thread is told when it starts (manifest-parse-worker.ts). */
export interface ParseWorkerData {
  /** Read the warm-up sample until the first file comes (only a thread started ahead of its files). */
  readonly warmUp: boolean;
}

/** A new parse thread with a heap of `memoryLimitMb`. Throws when no thread can be started. */
export function spawnManifestParseWorker(memoryLimitMb: number, warmUp = false): Worker {
  const workerData: ParseWorkerData = { warmUp };
  return new Worker(new URL('./manifest-parse-worker.js', import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: memoryLimitMb }, workerData });
}

interface Prestarted {
  readonly worker: Worker;
  /** Its listeners until it is taken. */
  readonly listeners: { readonly message: (message: unknown) => void; readonly exit: () => void; readonly error: () => void };
  /** It has said it is ready (its modules are loaded). */
  online: boolean;
  exited: boolean;
}

let prestarted: Prestarted | undefined;

/**
 * Starts the parse thread now, for the first ManifestParseThread to take. At start-up the main
 * thread loads its modules for about 0.3 s (0.4-0.5 s under load) before it reads the first
 * manifest; a thread started then boots alongside and reads its warm-up sample until the files
 * come, where one started by the first parse booted after it (0.2-0.4 s under load) and read the
 * first files with cold code. Unreferenced: it never keeps the process alive.
 */
export function prestartManifestParseThread(): void {
  if (prestarted) return;
  let worker: Worker;
  try {
    worker = spawnManifestParseWorker(DEFAULT_PARSE_MEMORY_LIMIT_MB, true);
  } catch {
    return; // The first parse tries again, and says why if it cannot.
  }
  const listeners = {
    message: (message: unknown): void => {
      if (typeof message === 'object' && message !== null && 'ready' in message) state.online = true;
    },
    exit: (): void => void (state.exited = true),
    // Until it is taken, a failure only means that it is not used.
    error: (): void => {},
  };
  const state: Prestarted = { worker, listeners, online: false, exited: false };
  worker.on('message', listeners.message).on('exit', listeners.exit).on('error', listeners.error);
  // After the listeners: a first 'message' listener refs the thread's port again.
  worker.unref();
  prestarted = state;
}

/**
 * The thread prestartManifestParseThread started, once, when it is still running and has the heap
 * asked for (else it is ended); `online` when it has already said it is ready. Its listeners are
 * removed: the caller sees every message from now on.
 */
export function takePrestartedManifestParseThread(memoryLimitMb: number): { readonly worker: Worker; readonly online: boolean } | undefined {
  const state = prestarted;
  if (!state) return undefined;
  prestarted = undefined;
  // Only these: Worker keeps listeners of its own on itself.
  state.worker.off('message', state.listeners.message).off('exit', state.listeners.exit).off('error', state.listeners.error);
  if (state.exited || memoryLimitMb !== DEFAULT_PARSE_MEMORY_LIMIT_MB) {
    void state.worker.terminate();
    return undefined;
  }
  return { worker: state.worker, online: state.online };
}
