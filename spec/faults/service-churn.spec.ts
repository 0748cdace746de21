import { readdirSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import test from 'ava';
import { loopbackBlock } from '../helpers/addresses.js';
import { startAgent } from '../helpers/agent-fixture.js';
import { tcpEcho, tcpRefused, tcpRequest } from '../helpers/backends.js';
import { formatDelay, watchEventLoopDelay } from '../helpers/event-loop-delay.js';
import { goodService, goodSlice } from '../helpers/object-mutations.js';
import { waitFor } from '../helpers/wait-for.js';

// Many Services added and removed again and again: every listener, timer and map entry of a
// removed Service must go with it. Counted from the outside: this process's open descriptors
// (/proc/self/fd) and its heap after a full garbage collection.

const SERVICES = 500;
const ROUNDS = 4;
const blocks = [loopbackBlock(226), loopbackBlock(227)];
const serviceIP = (i: number): string => blocks[i % 2]!(1 + Math.floor(i / 2));

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

test(`${SERVICES} services added and removed ${ROUNDS} times: no descriptor leak, bounded heap`, async (t) => {
  const backend = await tcpEcho(loopbackBlock(228)(101));
  t.teardown(() => backend.close());
  const fixture = await startAgent(t, {});
  const manifest = Array.from({ length: SERVICES }, (_, i) => [goodService(`many-${i}`, serviceIP(i)), goodSlice(`many-${i}-0`, `many-${i}`, backend.host, backend.port)])
    .flat()
    .map((o) => JSON.stringify(o))
    .join('\n---\n');
  const ports = (): number => fixture.agent.status().filter((s) => s.listening.length > 0).length;

  const delay = watchEventLoopDelay();
  const samples: Array<{ fds: number; heapMB: number }> = [];
  let peak = 0;
  let baseline = { fds: 0, heapMB: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    await fixture.write('many.yaml', manifest);
    await waitFor(`round ${round}: ${SERVICES} listening`, () => ports() === SERVICES, 30_000);
    // Every Service works, checked on a few.
    for (const i of [0, 1, SERVICES - 1, (round * 97) % SERVICES]) t.is((await tcpRequest(serviceIP(i), 8080, `r${round}s${i}`)).toString(), `r${round}s${i}`);
    // The count sees the listeners (so it would see them left behind).
    const up = openDescriptors();
    peak = Math.max(peak, up);
    t.true(up >= SERVICES, `${up} descriptors with ${SERVICES} listeners`);
    await fixture.remove('many.yaml');
    await waitFor(`round ${round}: all removed`, () => fixture.agent.status().length === 0, 30_000);
    t.true(await tcpRefused(serviceIP(SERVICES - 1), 8080));
    const sample = { fds: openDescriptors(), heapMB: Math.round(heapAfterGc() / 1e5) / 10 };
    samples.push(sample);
    // The first round warms up what is created once (caches, the watch, buffers).
    if (round === 0) baseline = sample;
  }
  const d = delay.stop();
  const last = samples[samples.length - 1]!;
  t.true(last.fds <= baseline.fds + 5, `descriptors after round 1: ${baseline.fds}, after round ${ROUNDS}: ${last.fds}`);
  t.true(last.heapMB <= baseline.heapMB + 16, `heap after round 1: ${baseline.heapMB} MB, after round ${ROUNDS}: ${last.heapMB} MB`);
  t.log(`${peak} descriptors with every service up; per round (fds, heap MB after gc): ${samples.map((s) => `${s.fds}/${s.heapMB}`).join(', ')}; ${formatDelay(d)}`);
});
