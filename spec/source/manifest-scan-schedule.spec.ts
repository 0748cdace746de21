import test from 'ava';
import type { ExecutionContext } from 'ava';
import { ManifestScanSchedule } from '../../lib/source/manifest-scan-schedule.js';
import { waitFor } from '../helpers/wait-for.js';

/** Every reading the schedule ran, in order: `rescan`, or the named files. */
function scheduled(t: ExecutionContext, debounceMs: number, rescanIntervalMs = 0): { schedule: ManifestScanSchedule; runs: string[] } {
  const runs: string[] = [];
  const schedule = new ManifestScanSchedule({
    debounceMs,
    rescanIntervalMs,
    rescan: async () => void runs.push('rescan'),
    readNamed: async (files) => void runs.push(files.join(',')),
  });
  t.teardown(() => schedule.close());
  return { schedule, runs };
}

test('a named file is read at once; the rescan follows when the events are quiet', async (t) => {
  const { schedule, runs } = scheduled(t, 200);
  const started = Date.now();
  schedule.event('/m/a.yaml', true);
  await waitFor('the named read', () => runs.length >= 1, 5000, 2);
  t.deepEqual(runs, ['/m/a.yaml']);
  await waitFor('the rescan', () => runs.length >= 2, 5000, 2);
  t.deepEqual(runs, ['/m/a.yaml', 'rescan']);
  t.true(Date.now() - started >= 195, 'the rescan waited for the quiet period');
});

test('an event that names no file, or comes before the first delivery, only asks for the rescan', async (t) => {
  const { schedule, runs } = scheduled(t, 20);
  schedule.event(undefined, true);
  schedule.event('/m/a.yaml', false);
  await waitFor('the rescan', () => runs.length >= 1, 5000, 2);
  t.deepEqual(runs, ['rescan']);
});

test('a blocked schedule reads nothing until released, then what came due', async (t) => {
  const { schedule, runs } = scheduled(t, 10);
  const release = schedule.block();
  schedule.event('/m/a.yaml', true);
  // Timers of one duration fire in the order they were set: once a second schedule's quiet
  // period, begun after, has ended and run its rescan, the blocked one's has ended too.
  const after = scheduled(t, 10);
  after.schedule.event(undefined, true);
  await waitFor('the later quiet period', () => after.runs.length >= 1, 5000, 2);
  t.deepEqual(runs, []);
  release();
  await waitFor('the rescan after release', () => runs.length >= 1, 5000, 2);
  // The rescan reads every file: the named read is part of it.
  t.deepEqual(runs, ['rescan']);
});

test('the periodic rescan runs without events', async (t) => {
  const { schedule, runs } = scheduled(t, 10, 30);
  schedule.start();
  await waitFor('two periodic rescans', () => runs.length >= 2, 5000, 2);
  t.deepEqual(runs.slice(0, 2), ['rescan', 'rescan']);
});
