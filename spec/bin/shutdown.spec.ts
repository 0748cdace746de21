import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { serviceYaml } from '../helpers/agent-fixture.js';
import { requireSystemBinary } from '../../lib/rules/command-runner.js';
import { execCommand } from '../helpers/netns.js';
import { CLI, ROOT, START_TIMEOUT_MS } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * These run the CLI in a network and mount namespace of its own (unshare), with
 * --assign-service-ips=lo, then replace `ip` for that process alone (a bind mount in its private
 * mount namespace) so that removing the addresses on the way out fails or hangs: a real close
 * failure, the host untouched. They need root; they skip elsewhere, except in CI, where they must run.
 */
const privileged = process.getuid?.() === 0 || process.env['CI'] === 'true' ? test : test.skip;

interface Isolated {
  readonly pid: number;
  stderr(): string;
  readonly exited: Promise<number | string>;
}

async function startIsolated(t: ExecutionContext, args: readonly string[]): Promise<Isolated> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-shutdown-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'svc.yaml'), serviceYaml('web', '10.200.0.1', [{ name: 'http', port: 8080 }]));
  const argv = [
    '--net',
    '--mount',
    '--propagation',
    'private',
    process.execPath,
    CLI,
    '--manifests',
    dir,
    '--assign-service-ips=lo',
    '--healthz-bind-address=',
    '--metrics-bind-address=',
    '--log-format',
    'json',
    ...args,
  ];
  // unshare execs the command in its own process: the child's pid is the proxy's.
  const child = spawn('unshare', argv, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal ?? -1)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    // The address record is in the host's /run, named after the namespace that is gone now.
    const state = /"stateFile":"([^"]+)"/.exec(err)?.[1];
    if (state) await rm(state, { force: true });
  });
  await waitFor('proxy started', () => err.includes('"message":"started"') || child.exitCode !== null, START_TIMEOUT_MS);
  if (child.exitCode !== null) throw new Error(`proxy exited at start: ${err}`);
  return { pid: child.pid!, stderr: () => err, exited };
}

/** Replaces `ip` in the proxy's mount namespace only, with a script. */
async function replaceIp(t: ExecutionContext, pid: number, script: string): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-fake-ip-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const fake = path.join(dir, 'ip');
  await writeFile(fake, `#!/bin/sh\n${script}\n`);
  await chmod(fake, 0o755);
  // The one the proxy runs: the first in its system directories.
  const ip = await requireSystemBinary('ip');
  const mounted = await execCommand(['nsenter', '-t', String(pid), '-m', 'mount', '--bind', fake, ip]);
  if (mounted.code !== 0) throw new Error(`cannot replace ip in the proxy's mount namespace: ${mounted.stderr}`);
}

function entries(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

privileged('SIGTERM: a close that fails (service addresses cannot be removed) is logged with the cause and exits 1', async (t) => {
  const proxy = await startIsolated(t, ['--shutdown-grace-period', '0s']);
  await replaceIp(t, proxy.pid, 'echo "RTNETLINK answers: Operation not permitted" >&2\nexit 2');
  process.kill(proxy.pid, 'SIGTERM');
  t.is(await proxy.exited, 1);
  const log = entries(proxy.stderr());
  const failed = log.find((e) => e['message'] === 'close failed');
  t.regex(String(failed?.['error']), /could not remove service addresses: .*Operation not permitted/);
  t.like(log.at(-1), { message: 'stopped', code: 1 });
});

privileged('SIGTERM: a close that hangs ends at the deadline, the grace period plus 10 s, with exit 1', async (t) => {
  const proxy = await startIsolated(t, ['--shutdown-grace-period', '0s']);
  // Longer than the deadline, shorter than the command runner's own 60 s limit.
  await replaceIp(t, proxy.pid, 'exec sleep 30');
  process.kill(proxy.pid, 'SIGTERM');
  t.is(await proxy.exited, 1);
  const log = entries(proxy.stderr());
  t.like(
    log.find((e) => e['message'] === 'stopping'),
    { gracePeriodMs: 0, deadlineMs: 10_000 },
  );
  t.like(log.at(-1), { level: 'error', message: 'shutdown deadline passed: exiting now', deadlineMs: 10_000 });
});
