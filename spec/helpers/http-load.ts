import { request } from 'undici';

export interface LoadResult {
  readonly requests: number;
  readonly failures: number;
  /** The first few failures, for the test's message. */
  readonly errors: readonly string[];
  /** Answers per backend (the x-backend header of httpPathEcho). */
  readonly byBackend: ReadonlyMap<string, number>;
}

export interface Load {
  /** Requests finished so far. */
  readonly requests: number;
  /** Stops the loop and waits for the requests in flight. */
  stop(): Promise<LoadResult>;
}

/**
 * A bounded loop of real HTTP requests to `base`/<word>, `parallel` at a time, each on a fresh
 * connection (so every request goes through the proxy's accept and dial), until stop() or
 * `maxRequests`, or `maxMs` after it began. A request fails unless it answers 200 with the word back.
 */
export function httpLoad(base: string, options: { parallel?: number; maxRequests?: number; timeoutMs?: number; maxMs?: number } = {}): Load {
  const { parallel = 4, maxRequests = 20_000, timeoutMs = 5000, maxMs = 120_000 } = options;
  const deadline = Date.now() + maxMs;
  let started = 0;
  let requests = 0;
  let failures = 0;
  let running = true;
  const errors: string[] = [];
  const byBackend = new Map<string, number>();
  const one = async (n: number): Promise<void> => {
    const word = `w${n}`;
    try {
      const res = await request(`${base}/${word}`, { reset: true, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      const body = await res.body.text();
      if (res.statusCode !== 200 || body !== word) throw new Error(`status ${res.statusCode}, body ${JSON.stringify(body.slice(0, 40))}`);
      const backend = String(res.headers['x-backend'] ?? '');
      byBackend.set(backend, (byBackend.get(backend) ?? 0) + 1);
    } catch (err) {
      failures++;
      if (errors.length < 5) errors.push(`request ${n}: ${(err as Error).message}`);
    } finally {
      requests++;
    }
  };
  const worker = async (): Promise<void> => {
    while (running && started < maxRequests && Date.now() < deadline) await one(started++);
  };
  const workers = Promise.all(Array.from({ length: parallel }, worker));
  return {
    get requests() {
      return requests;
    },
    async stop() {
      running = false;
      await workers;
      return { requests, failures, errors, byBackend };
    },
  };
}
