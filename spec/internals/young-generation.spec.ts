import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const CHILD = fileURLToPath(new URL('./fixtures/young-generation-child.js', import.meta.url));
const MiB = 2 ** 20;

function sizes(...nodeArgs: string[]): { start: number; held: number; released: number } {
  const out = execFileSync(process.execPath, [...nodeArgs, CHILD, String(2 * MiB)], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } });
  return JSON.parse(out) as { start: number; held: number; released: number };
}

test(`the young generation stays at the cap while held, also across a worker thread, and grows again once released (Node ${process.versions.node})`, (t) => {
  const { start, held, released } = sizes();
  t.log(`young generation: ${start / MiB} MiB at start, ${held / MiB} held, ${released / MiB} released`);
  // Held: the cap (2 MiB), or up to two doublings past it, as collections are reported after they
  // ran (on Node 20 the worker thread's start lets it grow until the next report). Without the
  // hold it reaches 32 MiB (Node 20) or 128 MiB (Node 24).
  t.true(start <= 2 * MiB);
  t.true(held <= 8 * MiB);
  t.true(released > held);
});

test('a young generation size given on the command line is left alone', (t) => {
  const { held } = sizes('--max-semi-space-size=16');
  t.true(held > 8 * MiB, `${held / MiB} MiB`);
});
