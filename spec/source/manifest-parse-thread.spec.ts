import { monitorEventLoopDelay } from 'node:perf_hooks';
import test from 'ava';
import { ManifestError } from '../../lib/errors.js';
import { ManifestParseThread } from '../../lib/source/manifest-parse-thread.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml, startAgent } from '../helpers/agent-fixture.js';
import { tcpEcho, tcpRequest } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait-for.js';
import { deepBlockService, deepFlowService, slowConfigMap } from '../helpers/hostile-manifests.js';
import { captureLogLines } from '../helpers/log-capture.js';

const ip = loopbackBlock(243);

const logCapture = captureLogLines();
const logLines = logCapture.lines;
test.after.always(() => logCapture.close());

// Serial (run before the others in this file): their large texts are built on this event loop too.
test.serial('hostile manifests are refused or read off the event loop: a service keeps answering through the proxy', async (t) => {
  const echo = await tcpEcho(ip(101));
  t.teardown(() => echo.close());
  const f = await startAgent(t, {
    'svc.yaml': serviceYaml('steady', ip(1), [{ name: 'p', port: 7100 }]),
    'eps.yaml': sliceYaml('steady', 'steady-1', [{ name: 'p', port: echo.port }], [{ ip: ip(101) }]),
  });
  t.is((await tcpRequest(ip(1), 7100, 'hello')).toString(), 'hello');

  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  // A client that keeps asking while the files are written and read (bounded: at most 2,000 requests).
  let answered = 0;
  const failures: string[] = [];
  let stop = false;
  const client = (async () => {
    for (let i = 0; i < 2000 && !stop; i++) {
      try {
        const reply = await tcpRequest(ip(1), 7100, `ping ${i}`, 2000);
        if (reply.toString() === `ping ${i}`) answered++;
        else failures.push(`request ${i}: ${reply.toString()}`);
      } catch (err) {
        failures.push(`request ${i}: ${(err as Error).message}`);
      }
      // One request per 20 ms: a steady trickle, not a load test.
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  const mark = logLines.length;
  await f.write('deep-block.yaml', deepBlockService(3000));
  await f.write('deep-flow.yaml', deepFlowService(100_000));
  // Within every limit, but slow to read; a Service after it shows when it has been read.
  await f.write('slow.yaml', `${slowConfigMap(3000)}---\n${serviceYaml('late', ip(2), [{ name: 'p', port: 7101 }])}`);
  const rejected = (file: string): string[] => logLines.slice(mark).filter((l) => l.includes('rejected manifest object') && l.includes(file));
  await waitFor('both hostile files rejected', () => rejected('deep-block.yaml').length > 0 && rejected('deep-flow.yaml').length > 0, 60_000);
  await waitFor('the slow file read', () => f.agent.status().some((s) => s.spn === 'default/late:p'), 60_000);
  stop = true;
  await client;
  delay.disable();

  const maxMs = delay.max / 1e6;
  t.log(`event-loop delay while loading: p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms, max ${maxMs.toFixed(1)} ms; ${answered} requests answered, ${failures.length} failed`);
  t.deepEqual(failures, []);
  t.true(answered > 0);
  t.true(maxMs < 500, `event loop blocked for ${maxMs.toFixed(0)} ms`);
  for (const file of ['deep-block.yaml', 'deep-flow.yaml']) {
    const lines = rejected(file);
    t.is(lines.length, 1, `one error line for ${file}`);
    t.regex(lines[0]!, /nesting deeper than 100 levels/);
  }
  t.is((await tcpRequest(ip(1), 7100, 'after')).toString(), 'after');
});

test('a parse over the time limit is refused with ManifestError, and the next file gets a new thread', async (t) => {
  const thread = new ManifestParseThread({ timeLimitMs: 600 });
  t.teardown(() => thread.close());
  // About 3 s of parsing on a loaded 2-core machine, 1 s on an idle one.
  const err = await t.throwsAsync(thread.parse(slowConfigMap(20_000), 'slow.yaml'), { instanceOf: ManifestError });
  t.is(err?.message, 'parsing took over 600 ms, the limit for a manifest; not parsed');
  t.is(err?.file, 'slow.yaml');
  const entries = await thread.parse(serviceYaml('ok', '10.96.0.9', [{ name: 'p', port: 80 }]), 'ok.yaml');
  t.like(entries, [{ type: 'service', object: 'Service default/ok' }]);
});

test('a parse that needs more than the memory limit is refused with ManifestError, and the next file gets a new thread', async (t) => {
  const thread = new ManifestParseThread({ memoryLimitMb: 16 });
  t.teardown(() => thread.close());
  // 11 MB of small mappings: several times that once parsed.
  const big = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  list:\n${Array.from({ length: 400_000 }, (_, i) => `  - {a: x${i}, b: y${i}}`).join('\n')}\n`;
  const err = await t.throwsAsync(thread.parse(big, 'big.yaml'), { instanceOf: ManifestError });
  t.is(err?.message, 'parsing needed over 16 MB, the limit for a manifest; not parsed');
  const entries = await thread.parse(serviceYaml('ok', '10.96.0.9', [{ name: 'p', port: 80 }]), 'ok.yaml');
  t.like(entries, [{ type: 'service', object: 'Service default/ok' }]);
});

test('after close() a parse is refused, never run on the main thread', async (t) => {
  const thread = new ManifestParseThread();
  thread.close();
  thread.close();
  await t.throwsAsync(thread.parse('a: 1\n', 'a.yaml'), { instanceOf: ManifestError, message: 'manifest parse thread closed' });
});
