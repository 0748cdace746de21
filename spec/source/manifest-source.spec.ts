import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { ManifestError } from '../../lib/errors.js';
import type { EndpointSliceSpec } from '../../lib/model/endpoint-slice.js';
import type { NodeSpec } from '../../lib/model/node.js';
import type { ServiceSpec } from '../../lib/model/service.js';
import { ManifestSource } from '../../lib/source/manifest-source.js';
import type { ManifestRejection, ManifestSourceOptions } from '../../lib/source/manifest-source.js';
import type { ServiceSourceHandler } from '../../lib/source/service-source.js';
import { waitFor } from '../helpers/wait-for.js';
import { captureLogLines } from '../helpers/log-capture.js';

/** How long a watched change may take to arrive. */
const DELIVERY_BUDGET_MS = 1000;

interface Delivery {
  readonly at: number;
  readonly what: 'service' | 'slice' | 'synced';
  readonly key: string;
  readonly previous?: ServiceSpec | EndpointSliceSpec | undefined;
  readonly current?: ServiceSpec | EndpointSliceSpec | undefined;
}

class Recorder implements ServiceSourceHandler {
  readonly events: Delivery[] = [];
  onServiceChange(key: string, previous: ServiceSpec | undefined, current: ServiceSpec | undefined): void {
    this.events.push({ at: Date.now(), what: 'service', key, previous, current });
  }
  onEndpointSliceChange(key: string, previous: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined): void {
    this.events.push({ at: Date.now(), what: 'slice', key, previous, current });
  }
  onSynced(): void {
    this.events.push({ at: Date.now(), what: 'synced', key: '' });
  }
  /** Every onNodeChange, in order, and how many events had been recorded before it. */
  readonly nodes: Array<{ node: NodeSpec | undefined; after: number }> = [];
  onNodeChange(node: NodeSpec | undefined): void {
    this.nodes.push({ node, after: this.events.length });
  }
  /** Deliveries for one key from event index `from` on. */
  for(key: string, from = 0): Delivery[] {
    return this.events.slice(from).filter((e) => e.key === key);
  }
  /** The first delivery for `key` after index `from` that satisfies `match`. */
  find(key: string, from: number, match: (d: Delivery) => boolean = () => true): Delivery | undefined {
    return this.for(key, from).find(match);
  }
}

/** Every `rejected manifest object` log line, to check there is exactly one per rejection. */
const logCapture = captureLogLines();
const logLines = logCapture.lines;
test.after.always(() => logCapture.close());

const dirs: string[] = [];
test.after.always(async () => {
  await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kup-manifests-'));
  dirs.push(dir);
  return dir;
}

interface Fixture {
  readonly dir: string;
  readonly source: ManifestSource;
  readonly rec: Recorder;
  readonly rejections: ManifestRejection[];
}

/**
 * Writes `files` into a new directory and starts a source on it (or on `paths`, relative to it).
 * The periodic rescan is off unless asked for, so that the timing checks measure the watch path.
 */
async function startSource(t: ExecutionContext, files: Record<string, string>, options: Partial<ManifestSourceOptions> & { relPaths?: string[] } = {}): Promise<Fixture> {
  const dir = await tempDir();
  for (const [name, text] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fs.writeFile(path.join(dir, name), text);
  }
  const rejections: ManifestRejection[] = [];
  const { relPaths, ...rest } = options;
  const source = new ManifestSource({
    rescanIntervalMs: 0,
    ...rest,
    paths: relPaths ? relPaths.map((p) => path.join(dir, p)) : [dir],
    onReject: (r) => rejections.push(r),
  });
  t.teardown(() => source.close());
  const rec = new Recorder();
  await source.start(rec);
  return { dir, source, rec, rejections };
}

function serviceYaml(name: string, port = 80, extra = ''): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
spec:
  clusterIP: 10.96.0.${port % 250}
  ports:
  - port: ${port}
    targetPort: 8080${extra}
`;
}

function sliceYaml(name: string, service: string, ips: string[]): string {
  return `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}
  labels:
    kubernetes.io/service-name: ${service}
addressType: IPv4
endpoints:
${ips.map((ip) => `- addresses: [${ip}]`).join('\n')}
ports:
- port: 8080
`;
}

const port = (d: Delivery | undefined): number | undefined => (d?.current as ServiceSpec | undefined)?.ports[0]?.port;

/** Writes a file and returns the delivery it causes, asserting it arrives within the budget. */
async function writeAndAwait(t: ExecutionContext, rec: Recorder, file: string, text: string, key: string, match?: (d: Delivery) => boolean): Promise<Delivery> {
  const from = rec.events.length;
  const started = Date.now();
  await fs.writeFile(file, text);
  const delivery = await waitFor(`delivery of ${key}`, () => rec.find(key, from, match), 5000, 10);
  t.true(delivery.at - started < DELIVERY_BUDGET_MS, `delivered after ${delivery.at - started} ms`);
  return delivery;
}

test('initial load delivers every object, then onSynced once', async (t) => {
  const endpoints = 'apiVersion: v1\nkind: Endpoints\nmetadata: {name: api}\nsubsets:\n- addresses: [{ip: 10.1.0.9}]\n  ports: [{port: 8080}]\n';
  const list = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'db', namespace: 'data' }, spec: { clusterIP: 'None' } }] });
  const { rec, rejections } = await startSource(t, {
    'a.yaml': `${serviceYaml('web')}---\n${sliceYaml('web-1', 'web', ['10.1.0.1', '10.1.0.2'])}`,
    'b.json': JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'api' }, spec: { clusterIP: '10.96.0.20', ports: [{ port: 8080 }] } }),
    'sub/deeper/c.yml': `${endpoints}---\n${list}\n`,
    'sub/cfg.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n',
    '.hidden.yaml': serviceYaml('hidden'),
    '.git/x.yaml': serviceYaml('in-dot-dir'),
    'notes.txt': serviceYaml('not-yaml'),
  });
  t.deepEqual(
    rec.events.map((e) => `${e.what} ${e.key}`),
    ['service data/db', 'service default/api', 'service default/web', 'slice default/api/subset-0', 'slice default/web-1', 'synced '],
  );
  t.true(rec.events.slice(0, -1).every((e) => e.previous === undefined && e.current !== undefined));
  t.deepEqual(rejections, []);
  const web = rec.find('default/web', 0)!.current as ServiceSpec;
  t.deepEqual(web.ports, [{ name: '', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 0 }]);
});

test('adding a file takes effect within 1 s', async (t) => {
  const { dir, rec } = await startSource(t, { 'a.yaml': serviceYaml('web') });
  const d = await writeAndAwait(t, rec, path.join(dir, 'b.yaml'), serviceYaml('api', 81), 'default/api');
  t.is(d.previous, undefined);
  t.is(port(d), 81);
});

test('editing a document re-delivers only that object', async (t) => {
  const { dir, rec } = await startSource(t, { 'a.yaml': `${serviceYaml('web')}---\n${serviceYaml('api', 81)}---\n${sliceYaml('web-1', 'web', ['10.1.0.1'])}` });
  const from = rec.events.length;
  const d = await writeAndAwait(t, rec, path.join(dir, 'a.yaml'), `${serviceYaml('web', 90)}---\n${serviceYaml('api', 81)}---\n${sliceYaml('web-1', 'web', ['10.1.0.1'])}`, 'default/web');
  t.is(port(d), 90);
  t.is((d.previous as ServiceSpec).ports[0]!.port, 80);
  // The whole file is delivered in one go, so anything else would already be here.
  t.deepEqual(
    rec.events.slice(from).map((e) => e.key),
    ['default/web'],
  );
});

test('changing endpoints delivers the slice with previous and current', async (t) => {
  const { dir, rec } = await startSource(t, { 'a.yaml': sliceYaml('web-1', 'web', ['10.1.0.1']) });
  const d = await writeAndAwait(t, rec, path.join(dir, 'a.yaml'), sliceYaml('web-1', 'web', ['10.1.0.1', '10.1.0.2']), 'default/web-1');
  t.is((d.previous as EndpointSliceSpec).endpoints.length, 1);
  t.is((d.current as EndpointSliceSpec).endpoints.length, 2);
});

test('deleting a file removes its objects within 1 s', async (t) => {
  const { dir, rec } = await startSource(t, { 'a.yaml': serviceYaml('web'), 'b.yaml': `${serviceYaml('api', 81)}---\n${sliceYaml('api-1', 'api', ['10.1.0.1'])}` });
  const from = rec.events.length;
  const started = Date.now();
  await fs.rm(path.join(dir, 'b.yaml'));
  const gone = await waitFor('deletions', () => (rec.find('default/api', from) && rec.find('default/api-1', from) ? rec.events.slice(from) : undefined));
  t.true(Math.max(...gone.map((e) => e.at)) - started < DELIVERY_BUDGET_MS);
  t.deepEqual(
    gone.map((e) => [e.key, e.previous !== undefined, e.current]),
    [
      ['default/api', true, undefined],
      ['default/api-1', true, undefined],
    ],
  );
});

test('a bad document is rejected once and its last good state stays in force', async (t) => {
  const { dir, rec, rejections } = await startSource(t, { 'a.yaml': `${serviceYaml('web')}---\n${serviceYaml('api', 81)}` });
  const file = path.join(dir, 'a.yaml');
  const from = rec.events.length;
  const linesBefore = logLines.length;
  const broken = serviceYaml('api', 82).replace('targetPort: 8080', 'targetPort: "8080"');
  await writeAndAwait(t, rec, file, `${serviceYaml('web', 90)}---\n${broken}`, 'default/web');
  t.deepEqual(rejections, [{ file, document: 2, object: 'Service default/api', field: 'spec.ports[0].targetPort', reason: 'must be an integer 1-65535 or a port name' }]);
  t.deepEqual(rec.for('default/api', from), []);

  // Another change elsewhere: the bad file is not re-read, re-reported or dropped.
  await writeAndAwait(t, rec, path.join(dir, 'marker.yaml'), serviceYaml('marker', 99), 'default/marker');
  t.is(rejections.length, 1);
  t.deepEqual(rec.for('default/api', from), []);
  const lines = logLines.slice(linesBefore).filter((l) => l.includes('rejected manifest object') && l.includes(file));
  t.is(lines.length, 1);
  t.regex(lines[0]!, /ERROR.*\[manifests\] rejected manifest object .*document=2 .*object="Service default\/api" field=spec\.ports\[0\]\.targetPort/);

  // Fixing it delivers the change from the last good state.
  const fixed = await writeAndAwait(t, rec, file, `${serviceYaml('web', 90)}---\n${serviceYaml('api', 82)}`, 'default/api');
  t.is((fixed.previous as ServiceSpec).ports[0]!.port, 81);
  t.is(port(fixed), 82);
  t.is(rejections.length, 1);
});

test('an unparseable YAML document keeps every object the file had', async (t) => {
  const { dir, rec, rejections } = await startSource(t, { 'a.yaml': `${serviceYaml('web')}---\n${serviceYaml('api', 81)}---\n${serviceYaml('db', 82)}` });
  const file = path.join(dir, 'a.yaml');
  const from = rec.events.length;
  // web changes; the second document cannot be read, so neither api (whose document it was) nor
  // db (whose document is gone, perhaps swallowed by the broken one) may be dropped.
  await writeAndAwait(t, rec, file, `${serviceYaml('web', 90)}---\nkind: [Service\nmetadata: {name: api}\n`, 'default/web');
  t.is(rejections.length, 1);
  t.like(rejections[0], { file, document: 2, object: 'unknown', field: '' });
  t.regex(rejections[0]!.reason, /^invalid YAML: /);
  t.deepEqual(
    rec.events.slice(from).map((e) => e.key),
    ['default/web'],
  );
});

test('a rejected document whose identity is known keeps only that object', async (t) => {
  const { dir, rec, rejections } = await startSource(t, { 'a.yaml': `${serviceYaml('web')}---\n${serviceYaml('api', 81)}` });
  const from = rec.events.length;
  await writeAndAwait(t, rec, path.join(dir, 'a.yaml'), serviceYaml('api', 81).replace('apiVersion: v1\n', ''), 'default/web');
  t.deepEqual(
    rejections.map((r) => [r.document, r.object, r.field]),
    [[1, 'Service default/api', 'apiVersion']],
  );
  t.deepEqual(
    rec.events.slice(from).map((e) => [e.key, e.current]),
    [['default/web', undefined]],
  );
});

test('an editor-style save (write a temp file, rename over) of a watched file', async (t) => {
  const { dir, rec } = await startSource(t, { 'web.yaml': serviceYaml('web'), 'other.yaml': serviceYaml('other', 70) }, { relPaths: ['web.yaml'] });
  t.deepEqual(
    rec.events.map((e) => e.key),
    ['default/web', ''],
  );
  const from = rec.events.length;
  const started = Date.now();
  const tmp = path.join(dir, '.web.yaml.swp');
  await fs.writeFile(tmp, serviceYaml('web', 91));
  await fs.rename(tmp, path.join(dir, 'web.yaml'));
  const d = await waitFor('delivery after rename', () => rec.find('default/web', from));
  t.true(d.at - started < DELIVERY_BUDGET_MS, `delivered after ${d.at - started} ms`);
  t.is(port(d), 91);
  // Sibling files of a watched file are not read.
  t.deepEqual(rec.for('default/other'), []);
});

test('a missing path at start throws ManifestError naming it', async (t) => {
  const dir = await tempDir();
  const missing = path.join(dir, 'nope.yaml');
  const source = new ManifestSource({ paths: [dir, missing] });
  t.teardown(() => source.close());
  const rec = new Recorder();
  const err = await t.throwsAsync(source.start(rec), { instanceOf: ManifestError });
  t.is(err.file, missing);
  t.is(err.code, 'KUP_ERR_MANIFEST');
  t.true(err.message.includes(missing));
  t.deepEqual(rec.events, []);
});

test('invalid options are refused up front', (t) => {
  t.throws(() => new ManifestSource({ paths: [] }), { message: /paths/ });
  t.throws(() => new ManifestSource({ paths: ['x'], debounceMs: -1 }), { message: /debounceMs/ });
});

test('a new subdirectory is read and watched', async (t) => {
  const { dir, rec } = await startSource(t, { 'a.yaml': serviceYaml('web') });
  await fs.mkdir(path.join(dir, 'sub', 'deeper'), { recursive: true });
  await writeAndAwait(t, rec, path.join(dir, 'sub', 'deeper', 'a.yaml'), serviceYaml('api', 81), 'default/api');
  // Only a watch on the new directory itself can deliver this in time (no periodic rescan here).
  await writeAndAwait(t, rec, path.join(dir, 'sub', 'deeper', 'b.yaml'), serviceYaml('db', 82), 'default/db');
});

test('the same object in two files: the first file in path order wins', async (t) => {
  const { dir, rec } = await startSource(t, { 'b.yaml': serviceYaml('web', 82), 'a.yaml': serviceYaml('web', 81) });
  t.is(port(rec.find('default/web', 0)), 81);
  const warnings = (): string[] => logLines.filter((l) => l.includes('duplicate manifest object') && l.includes(dir));
  t.is(warnings().length, 1);
  t.regex(warnings()[0]!, /WARN .*object="Service default\/web" file=\S*b\.yaml kept=\S*a\.yaml/);
  // Editing the loser changes nothing, and the duplicate is not warned about again.
  const from = rec.events.length;
  await fs.writeFile(path.join(dir, 'b.yaml'), serviceYaml('web', 83));
  await writeAndAwait(t, rec, path.join(dir, 'marker.yaml'), serviceYaml('marker', 99), 'default/marker');
  t.deepEqual(rec.for('default/web', from), []);
  t.is(warnings().length, 1);
  // Removing the winner hands the object to the other file.
  const started = Date.now();
  await fs.rm(path.join(dir, 'a.yaml'));
  const d = await waitFor('hand-over', () => rec.find('default/web', from));
  t.true(d.at - started < DELIVERY_BUDGET_MS);
  t.is(port(d), 83);
});

test('touching a file without changing it delivers nothing', async (t) => {
  const { dir, rec } = await startSource(t, { 'a.yaml': serviceYaml('web') });
  const from = rec.events.length;
  const later = new Date(Date.now() + 5000);
  await fs.utimes(path.join(dir, 'a.yaml'), later, later);
  await fs.writeFile(path.join(dir, 'a.yaml'), serviceYaml('web'));
  await writeAndAwait(t, rec, path.join(dir, 'marker.yaml'), serviceYaml('marker', 99), 'default/marker');
  t.deepEqual(rec.for('default/web', from), []);
});

test('a file that cannot be read keeps its last good objects and is reported once', async (t) => {
  const { dir, rec, rejections } = await startSource(t, { 'web.yaml': serviceYaml('web') }, { relPaths: ['web.yaml'] });
  const file = path.join(dir, 'web.yaml');
  const from = rec.events.length;
  // A symlink to itself fails with ELOOP, for root too (chmod 000 would not stop root).
  await fs.symlink('web.yaml', path.join(dir, 'loop.yaml'));
  await fs.rename(path.join(dir, 'loop.yaml'), file);
  await waitFor('rejection', () => rejections.length > 0);
  t.like(rejections[0], { file, document: 0, object: 'unknown', field: '' });
  t.regex(rejections[0]!.reason, /^cannot read file: .*ELOOP/);
  t.deepEqual(rec.for('default/web', from), []);

  await fs.writeFile(path.join(dir, 'web.yaml.new'), serviceYaml('web', 84));
  await fs.rename(path.join(dir, 'web.yaml.new'), file);
  const fixed = await waitFor('recovery', () => rec.find('default/web', from));
  t.is(port(fixed), 84);
  t.is(rejections.length, 1);
});

test('the periodic rescan catches changes even without watch events', async (t) => {
  // A debounce far beyond the test's deadline: only the periodic rescan can deliver.
  const { dir, rec } = await startSource(t, { 'a.yaml': serviceYaml('web') }, { debounceMs: 60_000, rescanIntervalMs: 100 });
  const from = rec.events.length;
  await fs.writeFile(path.join(dir, 'a.yaml'), serviceYaml('web', 85));
  const d = await waitFor('periodic delivery', () => rec.find('default/web', from), 3000);
  t.is(port(d), 85);
});

test('a ConfigMap-style volume: the ..data symlink is swapped', async (t) => {
  const dir = await tempDir();
  await fs.mkdir(path.join(dir, '..v1'));
  await fs.writeFile(path.join(dir, '..v1', 'web.yaml'), serviceYaml('web'));
  await fs.symlink('..v1', path.join(dir, '..data'));
  await fs.symlink('..data/web.yaml', path.join(dir, 'web.yaml'));
  const recs = [new Recorder(), new Recorder()];
  for (const [i, paths] of [[dir], [path.join(dir, 'web.yaml')]].entries()) {
    const source = new ManifestSource({ paths, rescanIntervalMs: 0 });
    t.teardown(() => source.close());
    await source.start(recs[i]!);
    t.is(port(recs[i]!.find('default/web', 0)), 80);
  }
  await fs.mkdir(path.join(dir, '..v2'));
  await fs.writeFile(path.join(dir, '..v2', 'web.yaml'), serviceYaml('web', 86));
  const started = Date.now();
  await fs.symlink('..v2', path.join(dir, '..data_tmp'));
  await fs.rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  for (const rec of recs) {
    const d = await waitFor('swap delivery', () => rec.find('default/web', 2));
    t.true(d.at - started < DELIVERY_BUDGET_MS, `delivered after ${d.at - started} ms`);
    t.is(port(d), 86);
  }
});

test('nothing is delivered after close; close and destroy are idempotent', async (t) => {
  const { dir, source, rec } = await startSource(t, { 'a.yaml': serviceYaml('web') });
  const witness = new ManifestSource({ paths: [dir], rescanIntervalMs: 0 });
  t.teardown(() => witness.close());
  const seen = new Recorder();
  await witness.start(seen);
  await source.close();
  await source.close();
  source.destroy();
  const from = rec.events.length;
  await fs.writeFile(path.join(dir, 'a.yaml'), serviceYaml('web', 87));
  // The witness watches the same directory: once it has the change, the closed source would have too.
  await waitFor('witness delivery', () => seen.find('default/web', 2));
  t.deepEqual(rec.events.slice(from), []);
  await t.throwsAsync(source.start(new Recorder()), { message: /closed/ });
});

test('start twice is refused', async (t) => {
  const { source } = await startSource(t, { 'a.yaml': serviceYaml('web') });
  await t.throwsAsync(source.start(new Recorder()), { message: /already started/ });
});

test('a handler that throws after sync does not stop later deliveries', async (t) => {
  const { dir, rec } = await startSource(t, { 'a.yaml': serviceYaml('web') });
  const original = rec.onServiceChange.bind(rec);
  let thrown = 0;
  rec.onServiceChange = (key, previous, current) => {
    original(key, previous, current);
    if (key === 'default/web') {
      thrown++;
      throw new Error('handler bug');
    }
  };
  await writeAndAwait(t, rec, path.join(dir, 'a.yaml'), `${serviceYaml('web', 88)}---\n${serviceYaml('api', 81)}`, 'default/api');
  t.is(thrown, 1);
});

// ---- labels, and this node ---------------------------------------------------------------------

function labelled(yaml: string, labels: Record<string, string>): string {
  const lines = Object.entries(labels).map(([k, v]) => `    ${k}: "${v}"`);
  return yaml.replace(/^metadata:\n/m, `metadata:\n  labels:\n${lines.join('\n')}\n`);
}

test("headless-labelled and other proxies' objects are ignored, as from the API", async (t) => {
  const files = {
    'a.yaml': [
      serviceYaml('web'),
      labelled(serviceYaml('marked', 81), { 'service.kubernetes.io/headless': '' }),
      labelled(serviceYaml('theirs', 82), { 'service.kubernetes.io/service-proxy-name': 'other' }),
      labelled(serviceYaml('ours', 83), { 'service.kubernetes.io/service-proxy-name': 'kup' }),
      // Dropped before validation: this slice's address is bad.
      sliceYaml('db-1', 'db', ['10.1.0']).replace('  labels:\n', '  labels:\n    service.kubernetes.io/headless: ""\n'),
    ].join('---\n'),
  };
  const plain = await startSource(t, files);
  t.deepEqual(
    plain.rec.events.map((e) => `${e.what} ${e.key}`),
    ['service default/web', 'synced '],
  );
  t.deepEqual(plain.rejections, []);
  const named = await startSource(t, files, { serviceProxyName: 'kup' });
  t.deepEqual(
    named.rec.events.map((e) => `${e.what} ${e.key}`),
    ['service default/ours', 'service default/web', 'synced '],
  );

  // Gaining the label is leaving.
  const from = named.rec.events.length;
  await fs.writeFile(path.join(named.dir, 'a.yaml'), labelled(serviceYaml('web'), { 'service.kubernetes.io/headless': 'true' }));
  await waitFor('web removed', () => named.rec.find('default/web', from, (d) => d.current === undefined));
});

const ZONE = 'topology.kubernetes.io/zone';

function nodeYaml(name: string, labels: Record<string, string>, extra = ''): string {
  return `apiVersion: v1
kind: Node
metadata:
  name: ${name}
  labels:
${Object.entries(labels)
  .map(([k, v]) => `    ${k}: ${v}`)
  .join('\n')}
${extra}`;
}

test('a Node manifest named after this node gives its labels and state before onSynced; others are ignored', async (t) => {
  const { dir, rec, rejections } = await startSource(
    t,
    { 'nodes.yaml': `${nodeYaml('node-a', { [ZONE]: 'zone-a' })}---\n${nodeYaml('node-b', { [ZONE]: 'zone-b' })}`, 'web.yaml': serviceYaml('web') },
    { nodeName: 'node-a' },
  );
  t.deepEqual(rejections, []);
  t.is(rec.nodes.length, 1);
  t.deepEqual(rec.nodes[0]!.node, { name: 'node-a', labels: { [ZONE]: 'zone-a' }, deleting: false, taints: [] });
  t.true(rec.nodes[0]!.after < rec.events.findIndex((e) => e.what === 'synced') + 1);

  // Edits are delivered; the other node's are not.
  await fs.writeFile(
    path.join(dir, 'nodes.yaml'),
    `${nodeYaml('node-a', { [ZONE]: 'zone-c' }, 'spec:\n  taints:\n  - {key: ToBeDeletedByClusterAutoscaler, effect: NoSchedule}\n')}---\n${nodeYaml('node-b', { [ZONE]: 'zone-d' })}`,
  );
  await waitFor('zone-c', () => rec.nodes.at(-1)?.node?.labels[ZONE] === 'zone-c');
  t.deepEqual(rec.nodes.at(-1)!.node!.taints, [{ key: 'ToBeDeletedByClusterAutoscaler', value: '', effect: 'NoSchedule' }]);
  t.is(rec.nodes.length, 2);

  // A bad Node is rejected naming the field, and the last good one stays.
  await fs.writeFile(path.join(dir, 'nodes.yaml'), nodeYaml('node-a', { [ZONE]: 'zone-e' }, 'spec:\n  taints: [{effect: NoSchedule}]\n'));
  await waitFor('rejected', () => rejections.length === 1);
  t.like(rejections[0], { object: 'Node node-a', field: 'spec.taints[0].key', reason: 'is required' });
  t.is(rec.nodes.length, 2);

  // Removing it: the node is unknown again.
  await fs.rm(path.join(dir, 'nodes.yaml'));
  await waitFor('node gone', () => rec.nodes.length === 3);
  t.is(rec.nodes.at(-1)!.node, undefined);
});

test("--node-labels give this node's labels without a Node manifest, and win over one key by key", async (t) => {
  const bare = await startSource(t, { 'web.yaml': serviceYaml('web') }, { nodeName: 'node-a', nodeLabels: { [ZONE]: 'zone-f' } });
  t.deepEqual(
    bare.rec.nodes.map((n) => n.node),
    [{ name: 'node-a', labels: { [ZONE]: 'zone-f' }, deleting: false, taints: [] }],
  );

  const both = await startSource(t, { 'node.yaml': nodeYaml('node-a', { [ZONE]: 'zone-a', rack: 'r1' }) }, { nodeName: 'node-a', nodeLabels: { [ZONE]: 'zone-f' } });
  t.deepEqual(both.rec.nodes.at(-1)?.node?.labels, { [ZONE]: 'zone-f', rack: 'r1' });
  // Without either, no node is ever delivered.
  const none = await startSource(t, { 'web.yaml': serviceYaml('web') }, { nodeName: 'node-a' });
  t.deepEqual(none.rec.nodes, []);
});

test('preload() reads the files before start() but delivers nothing until then; an edit in between follows', async (t) => {
  const dir = await tempDir();
  await fs.writeFile(path.join(dir, 'a.yaml'), serviceYaml('web', 81));
  const source = new ManifestSource({ paths: [dir], rescanIntervalMs: 0 });
  t.teardown(() => source.close());
  source.preload();
  const rec = new Recorder();
  // The parse thread reads what preload() found while nothing is started; no handler exists yet to deliver to.
  await fs.writeFile(path.join(dir, 'a.yaml'), serviceYaml('web', 82));
  await source.start(rec);
  t.is(rec.events.filter((e) => e.what === 'synced').length, 1);
  // Whichever text the preload read, the edit is in force within the budget after start().
  const last = await waitFor('the edit in force', () => (port(rec.for('default/web').at(-1)) === 82 ? rec.for('default/web').at(-1) : undefined), DELIVERY_BUDGET_MS, 10);
  t.is(last.what, 'service');
});

test('preload() of a missing path: start() throws ManifestError naming it, as without preload()', async (t) => {
  const dir = await tempDir();
  const missing = path.join(dir, 'nope.yaml');
  const source = new ManifestSource({ paths: [dir, missing] });
  t.teardown(() => source.close());
  source.preload();
  const rec = new Recorder();
  const err = await t.throwsAsync(source.start(rec), { instanceOf: ManifestError });
  t.is(err.file, missing);
  t.deepEqual(rec.events, []);
});

test('files over the inline size, parsed on two threads at start, report rejections and duplicates in path order', async (t) => {
  // Each file is over INLINE_PARSE_MAX_BYTES (16 KiB), so each goes to a parse thread.
  const filler = (name: string): string => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata:\n${Array.from({ length: 700 }, (_, i) => `  k${i}: "${'x'.repeat(20)}"`).join('\n')}\n`;
  const files: Record<string, string> = {};
  for (const name of ['a', 'b', 'c', 'd', 'e']) {
    files[`${name}.yaml`] = `${filler(`f-${name}`)}---\n${serviceYaml(`bad-${name}`, 80, '\n    protocol: SCTPX')}---\n${serviceYaml('shared', name.charCodeAt(0))}`;
  }
  const { rec, rejections } = await startSource(t, files);
  t.deepEqual(
    rejections.map((r) => path.basename(r.file)),
    ['a.yaml', 'b.yaml', 'c.yaml', 'd.yaml', 'e.yaml'],
  );
  t.true(rejections.every((r) => r.object.startsWith('Service default/bad-') && r.field === 'spec.ports[0].protocol'));
  // The first file in path order wins the duplicate, as with one thread.
  t.is(port(rec.find('default/shared', 0)), 'a'.charCodeAt(0));
});
