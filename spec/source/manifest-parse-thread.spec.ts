import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import test from 'ava';
import { ManifestError } from '../../lib/errors.js';
import { ManifestParseThread } from '../../lib/source/manifest-parse-thread.js';
import { parseManifest } from '../../lib/source/manifest-parser.js';
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

/** `count` Services in one file, over the size read on the main thread. */
function services(prefix: string, count: number): string {
  return Array.from({ length: count }, (_, i) => serviceYaml(`${prefix}-${i}`, `10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`, [{ name: 'p', port: 80 }])).join('---\n');
}

test('files sent while the thread reads another are read in turn, each given its own entries', async (t) => {
  const thread = new ManifestParseThread();
  t.teardown(() => thread.close());
  const texts = ['a', 'b', 'c', 'd'].map((prefix) => services(prefix, 150));
  t.true(texts[0]!.length > 16 * 1024);
  const results = await Promise.all(texts.map((text, i) => thread.parse(text, `${i}.yaml`)));
  for (const [i, prefix] of ['a', 'b', 'c', 'd'].entries()) {
    t.is(results[i]!.length, 150);
    t.like(results[i]![149], { type: 'service', object: `Service default/${prefix}-149` });
  }
});

test('a file over the time limit takes only itself down: the files sent after it are read by a new thread', async (t) => {
  const thread = new ManifestParseThread({ timeLimitMs: 600 });
  t.teardown(() => thread.close());
  const slow = thread.parse(slowConfigMap(20_000), 'slow.yaml');
  const next = [thread.parse(services('x', 100), 'x.yaml'), thread.parse(services('y', 100), 'y.yaml')];
  const err = await t.throwsAsync(slow, { instanceOf: ManifestError });
  t.is(err?.file, 'slow.yaml');
  const [x, y] = await Promise.all(next);
  t.like(x![99], { type: 'service', object: 'Service default/x-99' });
  t.like(y![99], { type: 'service', object: 'Service default/y-99' });
});

test('close() rejects every file sent and not yet read', async (t) => {
  const thread = new ManifestParseThread();
  const sent = [thread.parse(services('a', 100), 'a.yaml'), thread.parse(services('b', 100), 'b.yaml')];
  thread.close();
  for (const [i, parse] of sent.entries()) {
    const err = await t.throwsAsync(parse, { instanceOf: ManifestError, message: 'manifest parse thread closed' });
    t.is(err?.file, i === 0 ? 'a.yaml' : 'b.yaml');
  }
});

test('entries read by the thread are the ones read here: undefined-valued keys, -0 and key order kept', async (t) => {
  const thread = new ManifestParseThread();
  t.teardown(() => thread.close());
  const slice = 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nendpoints: [{addresses: [10.1.0.1]}]\n';
  const negativeZero = 'apiVersion: v1\nkind: Service\nmetadata: {name: np}\nspec: {type: NodePort, clusterIP: 10.97.0.1, ports: [{port: 80, nodePort: -0}]}\n';
  const texts = [`${services('w', 150)}---\n${slice}---\n[broken]\n`, `${services('z', 150)}---\n${negativeZero}`];
  for (const [i, text] of texts.entries()) {
    t.true(text.length > 16 * 1024);
    const read = await thread.parse(text, `${i}.yaml`);
    t.true(isDeepStrictEqual(read, parseManifest(text, `${i}.yaml`)), `file ${i}`);
    t.is(JSON.stringify(read), JSON.stringify(parseManifest(text, `${i}.yaml`)), `key order of file ${i}`);
  }
});
