import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { KUBEADM_EXAMPLE, kubeadmWith } from '../helpers/config-fixture.js';
import { CLI, spawnNode, START_TIMEOUT_MS } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-cli-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test("kubeadm's KubeProxyConfiguration: --write-config-to exits 0 with no warning, and the file it writes loads", async (t) => {
  const dir = await tempDir(t);
  const out = path.join(dir, 'written.yaml');
  const p = spawnNode([CLI, '--config', KUBEADM_EXAMPLE, '--write-config-to', out]);
  t.is(await p.exited, 0);
  t.is(p.stderr(), '');
  const text = await readFile(out, 'utf8');
  t.regex(text, /kind: KubeProxyConfiguration\n[\s\S]*---\n[\s\S]*kind: KubeUserspaceProxyConfiguration\n/);
  const again = spawnNode([CLI, '--config', out, '--write-config-to', path.join(dir, 'again.yaml')]);
  t.is(await again.exited, 0);
  t.is(await readFile(path.join(dir, 'again.yaml'), 'utf8'), text);
});

test('fields that do not act here print one warning line each, naming the field', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'kube-proxy.yaml');
  const changed = { clusterCIDR: '10.244.0.0/16', 'conntrack.maxPerCore': 0, 'ipvs.strictARP': true, featureGates: { Foo: true } };
  await writeFile(file, await kubeadmWith({ ...changed, 'logging.format': 'json' }));
  const p = spawnNode([CLI, '--config', file, '--manifests', dir, '--dry-run']);
  t.is(await p.exited, 0);
  const warnings = p
    .stderr()
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((l) => l['level'] === 'warn');
  t.deepEqual(
    warnings.map((w) => w['message']),
    Object.keys(changed).map(() => 'setting not applied'),
  );
  t.deepEqual(
    warnings.map((w) => w['setting']).sort(),
    Object.keys(changed)
      .map((k) => `--config ${file}: ${k}`)
      .sort(),
  );
});

test('an unknown field and another proxy mode fail with one line each and exit code 2', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'kube-proxy.yaml');
  await writeFile(file, await kubeadmWith({ mode: 'ipvs', syncPeriod: '30s' }));
  const p = spawnNode([CLI, '--config', file, '--proxy-mode', 'nftables']);
  t.is(await p.exited, 2);
  const lines = p.stderr().split('\n\n')[0]!.split('\n');
  t.deepEqual(lines, [
    `kube-userspace-proxy: --config ${file}: syncPeriod: not a field of kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration (it is iptables.syncPeriod there)`,
    'kube-userspace-proxy: --proxy-mode: "nftables" is not supported: this proxy is kube-proxy\'s userspace mode (choose how traffic reaches it with --redirect)',
  ]);
});

async function oomScoreOf(t: ExecutionContext, args: string[]): Promise<{ score: number; stderr: string }> {
  const dir = await tempDir(t);
  const p = spawnNode([CLI, '--manifests', dir, '--healthz-bind-address=', '--metrics-bind-address=', '--log-format', 'json', ...args]);
  t.teardown(() => void p.child.kill('SIGKILL'));
  // Logged once the agent has started, after the score is set and the signal handlers are in.
  await waitFor('the agent to start', () => p.stderr().includes('"message":"started"'), START_TIMEOUT_MS);
  const score = Number((await readFile(`/proc/${p.child.pid}/oom_score_adj`, 'utf8')).trim());
  p.child.kill('SIGTERM');
  t.is(await p.exited, 0);
  return { score, stderr: p.stderr() };
}

test('--oom-score-adj is applied to the process', async (t) => {
  // Raising the score needs no privilege, so this runs as any user.
  const { score, stderr } = await oomScoreOf(t, ['--oom-score-adj', '500']);
  t.is(score, 500);
  t.false(stderr.includes('cannot set oom_score_adj'));
});

/** Lowering a score needs CAP_SYS_RESOURCE (capability 24), which a root in a container may lack. */
async function canLowerOomScore(): Promise<boolean> {
  const status = await readFile('/proc/self/status', 'utf8');
  const effective = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(status)![1]}`);
  return (effective & (1n << 24n)) !== 0n;
}

test("by default the score is kube-proxy's -999 with the privilege to lower it; without, no warning", async (t) => {
  const before = Number((await readFile('/proc/self/oom_score_adj', 'utf8')).trim());
  const { score, stderr } = await oomScoreOf(t, []);
  t.is(score, (await canLowerOomScore()) ? -999 : before);
  t.false(stderr.includes('"level":"warn"'));
});

test('an --oom-score-adj that cannot be set is one warning, and the proxy runs on', async (t) => {
  const { score, stderr } = await oomScoreOf(t, ['--oom-score-adj', '-500']);
  if (await canLowerOomScore()) {
    t.is(score, -500);
  } else {
    const warnings = stderr.split('\n').filter((l) => l.includes('"level":"warn"'));
    t.is(warnings.length, 1);
    t.regex(warnings[0]!, /"message":"cannot set oom_score_adj".*"oomScoreAdj":-500/);
  }
});
