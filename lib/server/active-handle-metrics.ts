import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';

const BY_TYPE = 'nodejs_active_handles';
const TOTAL = 'nodejs_active_handles_total';

type HandleList = () => readonly unknown[];

/**
 * Puts in place of prom-client's `nodejs_active_handles{type}` and `nodejs_active_handles_total`
 * two gauges of the same names, help texts and values that list the process's handles once per
 * scrape, not once for each of them, and count them by constructor name in a Map.
 *
 * Why: every listener is a handle, and with 10,000 service ports listing them twice and counting
 * them in a plain object was about a fifth of a /metrics scrape. The two series move to the end of
 * the process metrics; their text is otherwise what prom-client wrote. Does nothing where
 * prom-client did not register them (default metrics off, or a Node.js without the list).
 */
export function replaceActiveHandleMetrics(registry: Registry): void {
  const list = (process as unknown as { _getActiveHandles?: HandleList })._getActiveHandles;
  if (typeof list !== 'function' || registry.getSingleMetric(BY_TYPE) === undefined || registry.getSingleMetric(TOTAL) === undefined) return;
  registry.removeSingleMetric(BY_TYPE);
  registry.removeSingleMetric(TOTAL);
  // prom-client calls every collect() of a registry in one synchronous pass: the list read for the
  // first serves the second, and is dropped before anything else runs.
  let counted: { total: number; byType: Map<string, number> } | undefined;
  const count = (): NonNullable<typeof counted> => {
    if (counted !== undefined) return counted;
    const handles = list.call(process);
    const byType = new Map<string, number>();
    for (const h of handles) {
      // As prom-client counts them: by constructor name, skipping what has no constructor.
      const ctor = (h as { constructor?: { name: string } } | null | undefined)?.constructor;
      if (ctor === undefined) continue;
      byType.set(ctor.name, (byType.get(ctor.name) ?? 0) + 1);
    }
    counted = { total: handles.length, byType };
    queueMicrotask(() => (counted = undefined));
    return counted;
  };
  new Gauge({
    name: BY_TYPE,
    help: 'Number of active libuv handles grouped by handle type. Every handle type is C++ class name.',
    labelNames: ['type'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [type, n] of count().byType) this.set({ type }, n);
    },
  });
  new Gauge({
    name: TOTAL,
    help: 'Total number of active handles.',
    registers: [registry],
    collect() {
      this.set(count().total);
    },
  });
}
