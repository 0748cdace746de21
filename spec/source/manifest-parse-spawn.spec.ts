import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Worker } from 'node:worker_threads';
import test from 'ava';
import { serviceYaml } from '../helpers/agent-fixture.js';
import { waitFor } from '../helpers/wait-for.js';
import type { ParseReply, ParseRequest } from '../../lib/source/manifest-parse-messages.js';
import { DEFAULT_PARSE_MEMORY_LIMIT_MB, prestartManifestParseThread, takePrestartedManifestParseThread } from '../../lib/source/manifest-parse-spawn.js';
import { ManifestParseThread } from '../../lib/source/manifest-parse-thread.js';

// Serial: a thread started ahead is one per process.

/** `count` Services in one file, over the size read on the main thread. */
function services(prefix: string, count: number): string {
  return Array.from({ length: count }, (_, i) => serviceYaml(`${prefix}-${i}`, `10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`, [{ name: 'p', port: 80 }])).join('---\n');
}

/** Starts a thread ahead, and returns it as the process saw it start. */
async function prestart(): Promise<Worker> {
  let started: Worker | undefined;
  const onWorker = (worker: Worker): void => void (started ??= worker);
  process.on('worker', onWorker);
  try {
    prestartManifestParseThread();
    return await waitFor('a thread started', () => started);
  } finally {
    process.off('worker', onWorker);
  }
}

test.serial('a thread started ahead says when it is ready and reads a file sent while it warms up', async (t) => {
  const started = await prestart();
  t.teardown(() => void started.terminate());
  const taken = takePrestartedManifestParseThread(DEFAULT_PARSE_MEMORY_LIMIT_MB);
  t.is(taken?.worker, started);
  t.is(takePrestartedManifestParseThread(DEFAULT_PARSE_MEMORY_LIMIT_MB), undefined, 'taken once');
  const messages: (ParseReply | { ready: true })[] = [];
  taken!.worker.on('message', (message: ParseReply | { ready: true }) => messages.push(message));
  if (!taken!.online) await waitFor('ready', () => messages.some((m) => 'ready' in m));
  const request: ParseRequest = { id: 7, text: services('w', 20), fileName: 'w.yaml', options: {} };
  taken!.worker.postMessage(request);
  const reply = await waitFor('reply', () => messages.find((m): m is ParseReply => 'id' in m));
  t.is(reply.id, 7);
  t.true('entries' in reply && reply.entries.length === 20 && reply.entries[19]!.object === 'Service default/w-19');
});

test.serial('the first parse thread takes the thread started ahead', async (t) => {
  const started = await prestart();
  let exited = false;
  started.once('exit', () => (exited = true));
  const thread = new ManifestParseThread();
  t.teardown(() => thread.close());
  const entries = await thread.parse(services('a', 150), 'a.yaml');
  t.like(entries[149], { type: 'service', object: 'Service default/a-149' });
  t.is(takePrestartedManifestParseThread(DEFAULT_PARSE_MEMORY_LIMIT_MB), undefined);
  thread.close();
  await waitFor('the taken thread ended by close()', () => exited);
});

test.serial('a parse thread with another heap limit starts its own, and the one started ahead is ended', async (t) => {
  const started = await prestart();
  let exited = false;
  started.once('exit', () => (exited = true));
  const thread = new ManifestParseThread({ memoryLimitMb: 256 });
  t.teardown(() => thread.close());
  const entries = await thread.parse(services('b', 150), 'b.yaml');
  t.like(entries[149], { type: 'service', object: 'Service default/b-149' });
  await waitFor('the thread started ahead ended', () => exited);
});

test.serial('a thread started ahead that has exited is not taken', async (t) => {
  const started = await prestart();
  await started.terminate();
  t.is(takePrestartedManifestParseThread(DEFAULT_PARSE_MEMORY_LIMIT_MB), undefined);
  const thread = new ManifestParseThread();
  t.teardown(() => thread.close());
  const entries = await thread.parse(services('c', 150), 'c.yaml');
  t.is(entries.length, 150);
});

test.serial('a thread started ahead and never taken does not keep the process alive', async (t) => {
  const spawn = new URL('../../lib/source/manifest-parse-spawn.js', import.meta.url).href;
  // A file, not --eval: the thread inherits the process's options, and --input-type fails its start.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kup-prestart-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const script = path.join(dir, 'prestart.mjs');
  // Held until the thread is online (while it warms up), then only the thread is left.
  const started = `const hold = setTimeout(() => {}, 15_000); process.on('worker', (w) => w.once('online', () => { console.log('online'); clearTimeout(hold); }));`;
  fs.writeFileSync(script, `import { prestartManifestParseThread } from ${JSON.stringify(spawn)};\n${started}\nprestartManifestParseThread();\n`);
  const { stdout } = await promisify(execFile)(process.execPath, [script], { timeout: 20_000 });
  t.is(stdout.trim(), 'online');
});
