import test from 'ava';
import { freePort, tcpRefused } from '../helpers/backends.js';
import { CLI, spawnNode } from '../helpers/process.js';

test('a missing --manifests path is one error line carrying its code, exit 1, and nothing was ever served', async (t) => {
  const healthz = await freePort();
  const metrics = await freePort();
  const p = spawnNode([
    CLI,
    '--manifests',
    '/nonexistent/kup-start-failure',
    '--healthz-bind-address',
    `127.0.0.1:${healthz}`,
    '--metrics-bind-address',
    `127.0.0.1:${metrics}`,
    '--log-format',
    'json',
  ]);
  t.is(await p.exited, 1);
  const lines = p.stderr().trim().split('\n');
  t.is(lines.length, 1, p.stderr());
  const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.like(entry, { level: 'error', message: 'start failed', code: 'KUP_ERR_MANIFEST', error: 'manifest path /nonexistent/kup-start-failure does not exist' });
  t.is(p.stdout(), '');
  // One line says no server started; the ports it was given confirm it.
  t.true(await tcpRefused('127.0.0.1', healthz));
  t.true(await tcpRefused('127.0.0.1', metrics));
});

test('every missing --manifests path is named, one line each, before anything starts', async (t) => {
  const p = spawnNode([CLI, '--manifests', '/nonexistent/kup-a', '--manifests', '/nonexistent/kup-b', '--log-format', 'text']);
  t.is(await p.exited, 1);
  const lines = p.stderr().trim().split('\n');
  t.is(lines.length, 2, p.stderr());
  t.regex(lines[0]!, /ERROR \[main\] start failed code=KUP_ERR_MANIFEST error="manifest path \/nonexistent\/kup-a does not exist"/);
  t.regex(lines[1]!, /code=KUP_ERR_MANIFEST error="manifest path \/nonexistent\/kup-b does not exist"/);
});

test('a missing --kubeconfig file is one error line carrying its code, exit 1', async (t) => {
  const p = spawnNode([CLI, '--kubeconfig', '/nonexistent/kup-kubeconfig', '--log-format', 'json']);
  t.is(await p.exited, 1);
  const lines = p.stderr().trim().split('\n');
  t.is(lines.length, 1, p.stderr());
  t.like(JSON.parse(lines[0]!) as Record<string, unknown>, { level: 'error', message: 'start failed', code: 'KUP_ERR_KUBECONFIG', error: 'kubeconfig /nonexistent/kup-kubeconfig does not exist' });
});
