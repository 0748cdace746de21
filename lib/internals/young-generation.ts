import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

/**
 * Keeps V8's young generation (both semi-spaces) at about `capBytes` until the returned function
 * is called: it grows only while a doubling stays within the cap. Collections are reported after
 * they ran, so one or two more doublings can come before the hold is set again.
 *
 * V8 doubles the young generation (up to 32 MiB committed on Node 20 and 24) whenever many objects
 * survive a scavenge. A start-up with 10,000 service ports is exactly that: nearly everything it
 * allocates is state it keeps, so a larger young generation only delays the promotion of objects
 * that survive anyway, and leaves its pages resident in a process that then sits idle. The growth
 * factor is a V8 flag read each time the young generation grows, so it can be set after start; set
 * back, the young generation grows again under load, where short-lived objects make a large one
 * worth having.
 *
 * On Node 20, starting a worker thread sets V8's flags back to their defaults (Node 24 does not):
 * the flag is set again after every garbage collection, so at most the collections between a
 * worker's start and the next report can grow it.
 *
 * Nothing is changed when the growth factor or the young generation's size was given on the
 * command line or in NODE_OPTIONS: the operator chose. setFlagsFromString is documented as "may
 * simply do nothing" after start; then start-up is as before.
 */
export function holdYoungGeneration(capBytes = DEFAULT_CAP_BYTES): () => void {
  if (chosenByOperator()) return () => {};
  const hold = (): void => {
    const size = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
    // Held once the next doubling would pass the cap: the reports come after the collections, so
    // one more could grow it before this runs.
    v8.setFlagsFromString(`--semi-space-growth-factor=${size * DEFAULT_GROWTH_FACTOR > capBytes ? HELD_GROWTH_FACTOR : DEFAULT_GROWTH_FACTOR}`);
  };
  // Held from the start: the first reports come only after several collections.
  v8.setFlagsFromString(`--semi-space-growth-factor=${HELD_GROWTH_FACTOR}`);
  const collections = new PerformanceObserver(hold);
  collections.observe({ entryTypes: ['gc'] });
  let released = false;
  return () => {
    if (released) return;
    released = true;
    collections.disconnect();
    v8.setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_GROWTH_FACTOR}`);
  };
}

/**
 * 8 MiB: with 10,000 service ports, a start-up held at its initial size (1 MiB) ran about twice
 * as many scavenges (each scanning the old generation's pointers into the young one) for no less
 * RSS, as more short-lived objects were promoted; at 8 MiB RSS was about 19 MiB lower than with
 * the 32 MiB V8 grows to, with no more main-thread CPU.
 */
const DEFAULT_CAP_BYTES = 8 * 2 ** 20;
/** V8's default, --semi-space-growth-factor=2 (Node 20 and 24). */
const DEFAULT_GROWTH_FACTOR = 2;
/** 1: a grow keeps the size. */
const HELD_GROWTH_FACTOR = 1;

const YOUNG_GENERATION_FLAGS = /^--(semi[-_]space[-_]growth[-_]factor|(max|min)[-_]semi[-_]space[-_]size|max[-_]young[-_]generation[-_]size)\b/;

function chosenByOperator(): boolean {
  const given = [...process.execArgv, ...(process.env['NODE_OPTIONS'] ?? '').split(/\s+/)];
  return given.some((arg) => YOUNG_GENERATION_FLAGS.test(arg));
}
