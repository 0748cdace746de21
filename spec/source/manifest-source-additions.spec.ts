import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { rootLogger } from '../../lib/log.js';
import type { EndpointSliceSpec } from '../../lib/model/endpoint-slice.js';
import type { ServiceSpec } from '../../lib/model/service.js';
import { ManifestSource } from '../../lib/source/manifest-source.js';
import type { ManifestRejection } from '../../lib/source/manifest-source.js';
import type { ServiceSourceHandler } from '../../lib/source/service-source.js';
import { captureLogs } from '../helpers/log-capture.js';
import { waitFor } from '../helpers/wait-for.js';

// What only adds is delivered when its event comes; what removes or changes waits for the files
// to be quiet. A quiet period of a minute stands for "not before the end of the test".
const NEVER_QUIET_MS = 60_000;

interface Delivery {
  readonly at: number;
  readonly key: string;
  readonly previous: ServiceSpec | EndpointSliceSpec | undefined;
  readonly current: ServiceSpec | EndpointSliceSpec | undefined;
}

class Recorder implements ServiceSourceHandler {
  readonly events: Delivery[] = [];
  onServiceChange(key: string, previous: ServiceSpec | undefined, current: ServiceSpec | undefined): void {
    this.events.push({ at: Date.now(), key, previous, current });
  }
  onEndpointSliceChange(key: string, previous: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined): void {
    this.events.push({ at: Date.now(), key: `slice ${key}`, previous, current });
  }
  onSynced(): void {}
  find(key: string): Delivery | undefined {
    return this.events.find((e) => e.key === key);
  }
}

const logs = captureLogs();
const level = rootLogger.level;
rootLogger.level = 'debug';
test.after.always(() => {
  rootLogger.level = level;
  logs.close();
});

const dirs: string[] = [];
test.after.always(async () => {
  await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
});

async function start(t: ExecutionContext, files: Record<string, string>, debounceMs: number, rescanIntervalMs = 0): Promise<{ dir: string; rec: Recorder; rejections: ManifestRejection[] }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kup-additions-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await fs.writeFile(path.join(dir, name), text);
  const rejections: ManifestRejection[] = [];
  const source = new ManifestSource({ paths: [dir], debounceMs, rescanIntervalMs, onReject: (r) => rejections.push(r) });
  t.teardown(() => source.close());
  const rec = new Recorder();
  await source.start(rec);
  rec.events.length = 0;
  return { dir, rec, rejections };
}

function serviceYaml(name: string, port: number): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
spec:
  clusterIP: 10.96.0.${port % 250}
  ports:
  - port: ${port}
    targetPort: 8080
`;
}

const portOf = (d: Delivery | undefined): number | undefined => (d?.current as ServiceSpec | undefined)?.ports[0]?.port;

/** Log entries of one message from index `from` on. */
function logged(message: string, from = 0): number {
  return logs.entries.slice(from).filter((e) => e.message === message).length;
}

test('a new file is delivered before the files are quiet', async (t) => {
  const { dir, rec } = await start(t, { 'a.yaml': serviceYaml('web', 80) }, NEVER_QUIET_MS);
  await fs.writeFile(path.join(dir, 'b.yaml'), `${serviceYaml('api', 81)}---\n${serviceYaml('db', 82)}`);
  await waitFor('db', () => rec.find('default/db'), 5000, 5);
  t.is(portOf(rec.find('default/api')), 81);
  t.deepEqual(
    rec.events.map((e) => e.key),
    ['default/api', 'default/db'],
  );
});

test('a file renamed into place, and a Service that gains a port, are delivered at once', async (t) => {
  // More than one port needs names: the first has one from the start.
  const named = serviceYaml('web', 80).replace('    targetPort: 8080\n', '    targetPort: 8080\n    name: http\n');
  const { dir, rec } = await start(t, { 'a.yaml': named }, NEVER_QUIET_MS);
  // An atomic save: written under a hidden name, then renamed over the file.
  const grown = `${named}  - port: 443\n    name: https\n`;
  await fs.writeFile(path.join(dir, '.a.yaml.tmp'), grown);
  await fs.rename(path.join(dir, '.a.yaml.tmp'), path.join(dir, 'a.yaml'));
  const d = await waitFor('web with two ports', () => rec.find('default/web'), 5000, 5);
  t.deepEqual(
    (d.current as ServiceSpec).ports.map((p) => p.port),
    [80, 443],
  );
});

test('a truncated file takes nothing away when its text comes back before the files are quiet', async (t) => {
  const { dir, rec } = await start(t, { 'a.yaml': `${serviceYaml('web', 80)}---\n${serviceYaml('db', 82)}` }, NEVER_QUIET_MS);
  const from = logs.entries.length;
  await fs.truncate(path.join(dir, 'a.yaml'), 0);
  await waitFor('the truncation held', () => logged('held manifest changes until the files are quiet', from), 5000, 5);
  // The writer finishes, and adds a Service: that goes out at once, and nothing was removed.
  await fs.writeFile(path.join(dir, 'a.yaml'), `${serviceYaml('web', 80)}---\n${serviceYaml('db', 82)}---\n${serviceYaml('api', 81)}`);
  await waitFor('api', () => rec.find('default/api'), 5000, 5);
  t.deepEqual(
    rec.events.map((e) => e.key),
    ['default/api'],
  );
});

test('a change or a removal waits for the files to be quiet, then goes out whole', async (t) => {
  const quietMs = 300;
  const { dir, rec } = await start(t, { 'a.yaml': serviceYaml('web', 80), 'b.yaml': serviceYaml('db', 82) }, quietMs);
  const started = Date.now();
  await fs.writeFile(path.join(dir, 'a.yaml'), `${serviceYaml('web', 85)}---\n${serviceYaml('api', 81)}`);
  await fs.rm(path.join(dir, 'b.yaml'));
  const removed = await waitFor('db removed', () => rec.find('default/db'), 5000, 5);
  t.is(removed.current, undefined);
  t.true(removed.at - started >= quietMs - 5, `delivered ${removed.at - started} ms after the write`);
  // The new Service came in the same save as the change: it waited with it.
  t.true(rec.find('default/api')!.at - started >= quietMs - 5);
  t.is(portOf(rec.find('default/web')), 85);
});

test('a file cut in the middle of a line is not read until its line ends', async (t) => {
  const { dir, rec, rejections } = await start(t, { 'a.yaml': serviceYaml('web', 80) }, NEVER_QUIET_MS);
  // Cut inside "port: 8443": read as it stands, it would say port 84.
  const whole = serviceYaml('tls', 8443);
  const cut = whole.indexOf('port: 8443') + 'port: 84'.length;
  const file = await fs.open(path.join(dir, 'c.yaml'), 'w');
  t.teardown(() => file.close());
  await file.write(whole.slice(0, cut));
  // A new file written after it is read in the same reading or a later one.
  await fs.writeFile(path.join(dir, 'b.yaml'), serviceYaml('api', 81));
  await waitFor('api', () => rec.find('default/api'), 5000, 5);
  t.is(rec.find('default/tls'), undefined);
  await file.write(whole.slice(cut));
  const d = await waitFor('tls', () => rec.find('default/tls'), 5000, 5);
  t.is(portOf(d), 8443);
  t.deepEqual(rejections, []);
});

test('a document that fails before the files are quiet is reported only if it still fails then', async (t) => {
  const quietMs = 200;
  const { dir, rec, rejections } = await start(t, { 'a.yaml': serviceYaml('web', 80) }, quietMs);
  // Half a document, then all of it, within the quiet period: no error.
  await fs.writeFile(path.join(dir, 'b.yaml'), 'apiVersion: v1\nkind: Service\nmetadata:\n  name: api\nspec:\n  ports: [\n');
  await fs.writeFile(path.join(dir, 'b.yaml'), serviceYaml('api', 81));
  await waitFor('api', () => rec.find('default/api'), 5000, 5);
  // A removal goes out only once the files are quiet: after it, the rescan has read b.yaml too.
  await fs.rm(path.join(dir, 'a.yaml'));
  await waitFor('web removed', () => rec.find('default/web'), 5000, 5);
  t.deepEqual(rejections, []);
  // A document that stays broken is reported once the files are quiet, once.
  await fs.writeFile(path.join(dir, 'c.yaml'), 'apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports: [\n');
  const r = await waitFor('rejection', () => rejections[0], 5000, 5);
  t.is(r.file, path.join(dir, 'c.yaml'));
  t.is(rejections.length, 1);
});

test('a manifest given as a file, not a directory: what its edit adds goes out at once', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kup-additions-'));
  dirs.push(dir);
  const file = path.join(dir, 'web.yaml');
  await fs.writeFile(file, serviceYaml('web', 80));
  // A sibling that is not one of the given paths is never read.
  await fs.writeFile(path.join(dir, 'other.yaml'), serviceYaml('other', 83));
  const source = new ManifestSource({ paths: [file], debounceMs: NEVER_QUIET_MS, rescanIntervalMs: 0 });
  t.teardown(() => source.close());
  const rec = new Recorder();
  await source.start(rec);
  t.deepEqual(
    rec.events.map((e) => e.key),
    ['default/web'],
  );
  await fs.writeFile(path.join(dir, 'other.yaml'), serviceYaml('other', 84));
  await fs.writeFile(file, `${serviceYaml('web', 80)}---\n${serviceYaml('api', 81)}`);
  await waitFor('api', () => rec.find('default/api'), 5000, 5);
  t.deepEqual(
    rec.events.map((e) => e.key),
    ['default/web', 'default/api'],
  );
});

test('a file one reading finds emptied keeps its services until a reading a quiet period later agrees', async (t) => {
  // A writer that truncates a file and writes it again can be read in between, and no watch event
  // need tell (inotify merges the truncation's with an unread one). Here the file is changed through
  // a hard link outside the watched directory, so no event comes at all: only the periodic rescan
  // reads it.
  const { dir, rec } = await start(t, { 'a.yaml': serviceYaml('web', 80) }, 400, 20);
  const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'kup-additions-link-'));
  dirs.push(outside);
  const link = path.join(outside, 'a.yaml');
  await fs.link(path.join(dir, 'a.yaml'), link);
  const holds = (): number => logs.entries.filter((e) => e.message === 'held manifest changes until the files are quiet').length;
  const before = holds();
  await fs.truncate(link, 0);
  await waitFor('the emptied file read', () => holds() > before || rec.find('default/web'), 5000, 2);
  // Written again before the reading that would confirm it.
  await fs.writeFile(link, serviceYaml('web', 80));
  // A real change afterwards is all that reaches the handler.
  await fs.writeFile(path.join(dir, 'a.yaml'), serviceYaml('web', 81));
  await waitFor('web on port 81', () => rec.events.find((e) => e.key === 'default/web' && portOf(e) === 81), 5000, 5);
  t.deepEqual(
    rec.events.filter((e) => e.key === 'default/web').map((e) => [(e.previous as ServiceSpec | undefined)?.ports[0]?.port, portOf(e)]),
    [[80, 81]],
  );
});
