import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import type { Worker } from 'node:worker_threads';

/**
 * Keeps V8's young generation (both semi-spaces) at its current size until the returned function
 * is called.
 *
 * V8 doubles the young generation (up to 32 MiB committed on Node 20, more on Node 24) whenever
 * many objects survive a scavenge. A start-up with 10,000 service ports is exactly that: nearly
 * everything it allocates is state it keeps, so a larger young generation only delays the
 * promotion of objects that survive anyway, and leaves its pages resident in a process that then
 * sits idle. The growth factor is a V8 flag read each time the young generation would grow, so it
 * can be set after start; set back, the young generation grows again under load, where short-lived
 * objects make a large one worth having.
 *
 * On Node 20, starting a worker thread sets V8's flags back to their defaults (Node 24 does not):
 * the flag is set again after every garbage collection, so the collections between a worker's
 * start and the next report can still grow it (the manifest parse thread's start lets it reach
 * about 8 MiB).
 *
 * Nothing is changed when the growth factor or the young generation's size was given on the
 * command line or in NODE_OPTIONS: the operator chose. setFlagsFromString is documented as "may
 * simply do nothing" after start; then start-up is as before.
 */
export function holdYoungGeneration(): () => void {
  if (chosenByOperator()) return () => {};
  const hold = (): void => v8.setFlagsFromString(`--semi-space-growth-factor=${HELD_GROWTH_FACTOR}`);
  hold();
  const collections = new PerformanceObserver(hold);
  collections.observe({ entryTypes: ['gc'] });
  // Node 20 sets the flags back while a worker thread starts up: set again once it is online, not
  // only at the next garbage collection's report (reports come late on a busy machine, after the
  // young generation has doubled several times).
  const onWorker = (worker: Worker): void => void worker.once('online', hold);
  process.on('worker', onWorker);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    collections.disconnect();
    process.off('worker', onWorker);
    v8.setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_GROWTH_FACTOR}`);
  };
}

/** V8's default, --semi-space-growth-factor=2 (Node 20 and 24). */
const DEFAULT_GROWTH_FACTOR = 2;
/** 1: a grow keeps the size. */
const HELD_GROWTH_FACTOR = 1;

const YOUNG_GENERATION_FLAGS = /^--(semi[-_]space[-_]growth[-_]factor|(max|min)[-_]semi[-_]space[-_]size|max[-_]young[-_]generation[-_]size)\b/;

function chosenByOperator(): boolean {
  const given = [...process.execArgv, ...(process.env['NODE_OPTIONS'] ?? '').split(/\s+/)];
  return given.some((arg) => YOUNG_GENERATION_FLAGS.test(arg));
}
