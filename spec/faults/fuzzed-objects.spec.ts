import test from 'ava';
import type { ExecutionContext } from 'ava';
import { loopbackBlock } from '../helpers/addresses.js';
import { startAgent } from '../helpers/agent-fixture.js';
import { startApiAgent } from '../helpers/api-agent.js';
import { backendFor, httpPathEcho } from '../helpers/backends.js';
import { formatDelay, watchEventLoopDelay } from '../helpers/event-loop-delay.js';
import type { LoopDelay } from '../helpers/event-loop-delay.js';
import { httpLoad } from '../helpers/http-load.js';
import type { LoadResult } from '../helpers/http-load.js';
import { captureLogs } from '../helpers/log-capture.js';
import type { LogEntry } from '../helpers/log-capture.js';
import { goodService, goodSlice, mutatedObject } from '../helpers/object-mutations.js';
import type { MutatedObject } from '../helpers/object-mutations.js';
import { SeededRandom } from '../helpers/seeded-random.js';
import { waitFor } from '../helpers/wait-for.js';

// Generated bad objects, seeded so that a failing case can be replayed: valid Services and
// EndpointSlices with one field made invalid (wrong types, numbers out of range or huge, odd
// unicode, bounded deep nesting, missing fields, and duplicate keys in manifests), fed through
// manifest files and through the test API server to the real client-node, while a good Service
// answers a load loop throughout. Each bad object must get exactly one error line naming it and
// its field; nothing of it may reach the data path; no request of the load may fail.

const CASES = 300;
const logs = captureLogs();
test.after.always(() => logs.close());

/** Starts the good Service's backend and the load through it; returns what stop() measured. */
async function underLoad(t: ExecutionContext, base: string, run: () => Promise<void>): Promise<{ result: LoadResult; delay: LoopDelay }> {
  const delay = watchEventLoopDelay();
  const load = httpLoad(base, { parallel: 2, maxRequests: 20_000 });
  let result: LoadResult;
  try {
    await run();
    // And still serving once every bad object has been dealt with.
    const after = load.requests;
    await waitFor('requests after the bad objects', () => load.requests >= after + 20, 10_000);
  } finally {
    result = await load.stop();
  }
  return { result, delay: delay.stop() };
}

function generate(seed: number, clusterIP: string): MutatedObject[] {
  const r = new SeededRandom(seed);
  return Array.from({ length: CASES }, (_, i) => mutatedObject(r, i, clusterIP));
}

function checkOneLineEach(t: ExecutionContext, cases: readonly MutatedObject[], linesOf: (c: MutatedObject) => LogEntry[]): void {
  let wrong = 0;
  for (const c of cases) {
    const lines = linesOf(c);
    const ok = lines.length === 1 && String(lines[0]!['field']).startsWith(c.field);
    if (!ok && wrong++ < 10) t.fail(`${c.kind} ${c.name} (${c.field}, ${c.how}): ${lines.length} lines ${JSON.stringify(lines.map((l) => l['field']))}`);
  }
  t.is(wrong, 0, `${wrong} of ${cases.length} bad objects without exactly one line naming them and their field`);
}

test('manifests: several hundred generated bad objects, one error line each, the good Service serving throughout', async (t) => {
  const ip = loopbackBlock(224);
  const SEED = 4242;
  const good = await backendFor(t, httpPathEcho(ip(101), 0, 'good'));
  const fixture = await startAgent(t, {
    'good.yaml': [goodService('good', ip(1)), goodSlice('good-0', 'good', good.host, good.port)].map((o) => JSON.stringify(o)).join('\n---\n'),
  });
  await waitFor('good serving', () => fixture.agent.status().some((s) => s.spn === 'default/good:p' && s.endpoints.length === 1), 10_000);
  const cases = generate(SEED, ip(200));
  // Duplicate keys exist only in text: the parser must refuse the document.
  const duplicates = Array.from(
    { length: 20 },
    (_, i) =>
      `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fz-dup-${i}", "namespace": "default"}, "spec": {"clusterIP": "${ip(201)}", "ports": [{"port": 80}]}, "spec": {"clusterIP": "${ip(202)}", "ports": [{"port": 81}]}}`,
  );
  const rejected = (): LogEntry[] => logs.entries.filter((e) => e.message === 'rejected manifest object' && String(e['file']).startsWith(fixture.dir));

  const { result, delay } = await underLoad(t, `http://${ip(1)}:8080`, async () => {
    for (let f = 0; f * 50 < CASES; f++) {
      await fixture.write(
        `fuzz-${f}.yaml`,
        cases
          .slice(f * 50, f * 50 + 50)
          .map((c) => JSON.stringify(c.object))
          .join('\n---\n'),
      );
    }
    await fixture.write('duplicates.yaml', duplicates.join('\n---\n'));
    await waitFor('every bad object rejected', () => rejected().length >= CASES + duplicates.length, 30_000);
    // A good object written after all of them: once it serves, every file has been read.
    await fixture.write('marker.yaml', [goodService('marker', ip(2)), goodSlice('marker-0', 'marker', good.host, good.port)].map((o) => JSON.stringify(o)).join('\n---\n'));
    await waitFor('marker serving', () => fixture.agent.status().some((s) => s.spn === 'default/marker:p' && s.endpoints.length === 1), 10_000);
  });

  checkOneLineEach(t, cases, (c) => rejected().filter((e) => e['object'] === `${c.kind} default/${c.name}`));
  const dupLines = rejected().filter((e) => String(e['file']).endsWith('duplicates.yaml'));
  t.deepEqual(
    dupLines.map((e) => e['document']),
    duplicates.map((_, i) => i + 1),
    'one line per duplicate-key document',
  );
  t.true(
    dupLines.every((e) => /unique|duplicate/i.test(String(e['reason']))),
    JSON.stringify(dupLines[0]),
  );
  t.deepEqual(
    fixture.agent
      .status()
      .map((s) => s.spn)
      .sort(),
    ['default/good:p', 'default/marker:p'],
    'no bad object reached the data path',
  );
  t.is(result.failures, 0, result.errors.join('; '));
  t.true(delay.maxMs < 2000, formatDelay(delay));
  t.log(`seed ${SEED}: ${CASES} + ${duplicates.length} bad documents, ${rejected().length} error lines, ${result.requests} requests, ${result.failures} failed, ${formatDelay(delay)}`);
});

test('API: several hundred generated bad objects through client-node, one warning each, the good Service serving throughout', async (t) => {
  const ip = loopbackBlock(225);
  const SEED = 777;
  const good = await backendFor(t, httpPathEcho(ip(101), 0, 'good'));
  const { api, agent } = await startApiAgent(t, (api) => {
    api.create('services', goodService('good', ip(1)));
    api.create('endpointslices', goodSlice('good-0', 'good', good.host, good.port));
  });
  await waitFor('good serving', () => agent.status().some((s) => s.spn === 'default/good:p' && s.endpoints.length === 1), 10_000);
  const cases = generate(SEED, ip(200));
  const since = logs.entries.length;
  const rejected = (): LogEntry[] => logs.entries.slice(since).filter((e) => e.message === 'rejected kubernetes object' && String(e['name']).startsWith('fz-'));

  const { result, delay } = await underLoad(t, `http://${ip(1)}:8080`, async () => {
    for (const c of cases) api.create(c.kind === 'Service' ? 'services' : 'endpointslices', c.object);
    api.create('services', goodService('marker', ip(2)));
    api.create('endpointslices', goodSlice('marker-0', 'marker', good.host, good.port));
    await waitFor('marker serving', () => agent.status().some((s) => s.spn === 'default/marker:p' && s.endpoints.length === 1), 20_000);
    await waitFor('every bad object rejected', () => rejected().length >= CASES, 10_000);
    // The informers' resyncs must not repeat a warning.
    api.dropWatches();
    api.create('services', goodService('marker2', ip(3)));
    await waitFor('watches back', () => agent.status().some((s) => s.spn === 'default/marker2:p'), 20_000);
  });

  checkOneLineEach(t, cases, (c) => rejected().filter((e) => e['name'] === c.name && String(e['kind']).includes(c.kind)));
  t.deepEqual(
    agent
      .status()
      .map((s) => s.spn)
      .sort(),
    ['default/good:p', 'default/marker2:p', 'default/marker:p'],
    'no bad object reached the data path',
  );
  t.is(result.failures, 0, result.errors.join('; '));
  t.true(delay.maxMs < 2000, formatDelay(delay));
  t.log(`seed ${SEED}: ${CASES} bad objects, ${rejected().length} warnings, ${result.requests} requests, ${result.failures} failed, ${formatDelay(delay)}`);
});
