import net from 'node:net';
import test from 'ava';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { replaceActiveHandleMetrics } from '../../lib/server/active-handle-metrics.js';

/** The HELP, TYPE and sample lines of the active-handle metrics in a text, in a stable order. */
function handleLines(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => /^(# (HELP|TYPE) )?nodejs_active_handles/.test(l))
    .sort();
}

test("the active-handle metrics have prom-client's names, help and values, with listeners open", async (t) => {
  const servers: net.Server[] = [];
  t.teardown(() => servers.forEach((s) => s.close()));
  const listen = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const s = net.createServer();
      servers.push(s);
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve());
    });
  for (let i = 0; i < 3; i++) await listen();
  const prom = new Registry();
  collectDefaultMetrics({ register: prom });
  const mine = new Registry();
  collectDefaultMetrics({ register: mine });
  replaceActiveHandleMetrics(mine);
  // Both collect in this same turn, so both see the same handles.
  const [a, b] = await Promise.all([prom.metrics(), mine.metrics()]);
  const expected = handleLines(a);
  t.true(
    expected.some((l) => /^nodejs_active_handles\{type="Server"\} [3-9]/.test(l)),
    'the listeners are counted',
  );
  t.is(expected.length, 6 + expected.filter((l) => l.startsWith('nodejs_active_handles{')).length - 1);
  t.deepEqual(handleLines(b), expected);
  // And at a second scrape, after another listener opened: the list is read anew.
  await listen();
  const [c, d] = await Promise.all([prom.metrics(), mine.metrics()]);
  t.deepEqual(handleLines(d), handleLines(c));
  t.notDeepEqual(handleLines(d), expected);
});
