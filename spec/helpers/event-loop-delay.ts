import { monitorEventLoopDelay } from 'node:perf_hooks';

/** Event-loop delay over a stretch of time, in milliseconds. */
export interface LoopDelay {
  readonly p99Ms: number;
  readonly maxMs: number;
}

/**
 * Measures this process's event-loop delay until stop(): with the agent running in the same
 * process, a stall of the agent is a stall of this loop.
 */
export function watchEventLoopDelay(): { stop(): LoopDelay } {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  return {
    stop() {
      h.disable();
      return { p99Ms: Math.round(h.percentile(99) / 1e5) / 10, maxMs: Math.round(h.max / 1e5) / 10 };
    },
  };
}

export function formatDelay(d: LoopDelay): string {
  return `event-loop delay p99 ${d.p99Ms} ms, max ${d.maxMs} ms`;
}
