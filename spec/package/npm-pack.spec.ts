import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { httpPathEcho } from '../helpers/backends.js';
import { ROOT, START_TIMEOUT_MS } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';

const run = promisify(execFile);
const ip = loopbackBlock(247);
/** npm run by a spec must not see the settings of an `npm test` that started it (npm_config_*). */
const NPM_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
const NPM_TIMEOUT_MS = 180_000;

function npm(args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  return run('npm', [...args, '--no-audit', '--no-fund', '--no-update-notifier'], { cwd, env: NPM_ENV, timeout: NPM_TIMEOUT_MS, maxBuffer: 16 << 20 });
}

/** Every .js file under a folder of dist/, as the package path of it. */
async function jsFiles(folder: string): Promise<string[]> {
  const entries = await readdir(path.join(ROOT, folder), { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.js')).map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)));
}

/** The optional native data paths' sources (UDP and TCP): the install step builds them where a compiler is. */
async function nativeSources(): Promise<string[]> {
  const names = await readdir(path.join(ROOT, 'native'));
  return names.filter((n) => n === 'binding.gyp' || n === 'install.mjs' || n.endsWith('.c') || n.endsWith('.h')).map((n) => `native/${n}`);
}

test('the package holds the compiled bin and lib, the native sources, README and LICENSE, and nothing else', async (t) => {
  // --ignore-scripts: the specs run from an already compiled dist/, so prepare (tsc) is not needed.
  const { stdout } = await npm(['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT);
  const [packed] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
  const files = packed!.files.map((f) => f.path).sort();
  const expected = ['LICENSE', 'README.md', 'package.json', ...(await jsFiles('dist/bin')), ...(await jsFiles('dist/lib')), ...(await nativeSources())].sort();
  t.deepEqual(files, expected);
  t.true(files.includes('native/kup_udp.c'));
  t.true(files.includes('native/kup_tcp.c'));
  // The TCP addon's accept and dial are sources of their own (binding.gyp lists them).
  for (const source of ['tcp_accept.c', 'tcp_dial.c', 'tcp_address.c']) t.true(files.includes(`native/${source}`), source);
  // Loaded by path at run time rather than imported, so a files list that missed them would still build.
  t.true(files.includes('dist/lib/source/manifest-parse-worker.js'));
  t.true(files.includes('dist/lib/workers/worker-main.js'));
});

// Installing resolves the dependencies' versions, which needs the npm registry (or an npm cache that
// has already seen them): the package's own tarball is the only thing that comes from here.
test('a tarball from npm pack installs globally, and its bin prints its version and proxies a service from manifests', async (t) => {
  t.timeout(2 * NPM_TIMEOUT_MS + START_TIMEOUT_MS);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-package-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await npm(['pack', '--ignore-scripts', '--pack-destination', dir], ROOT);
  const [tarball] = (await readdir(dir)).filter((f) => f.endsWith('.tgz'));
  t.truthy(tarball, 'npm pack wrote a tarball');
  const prefix = path.join(dir, 'prefix');
  await npm(['install', '--global', '--prefix', prefix, '--prefer-offline', '--omit=dev', path.join(dir, tarball!)], dir);
  const bin = path.join(prefix, 'bin', 'kube-userspace-proxy');
  // The install step built the native data paths from the shipped sources (this machine has a compiler).
  const installed = path.join(prefix, 'lib', 'node_modules', 'kube-userspace-proxy');
  const built = await readdir(path.join(installed, 'native', 'build', 'Release'));
  t.true(built.includes('kup_udp.node'), 'the installed package built its native UDP addon');
  t.true(built.includes('kup_tcp.node'), 'the installed package built its native TCP addon');

  const { version } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  t.is((await run(bin, ['--version'], { cwd: dir, timeout: START_TIMEOUT_MS })).stdout, `kube-userspace-proxy ${version}\n`);

  const pod = await httpPathEcho(ip(101), 0, 'pod-a');
  t.teardown(() => pod.close());
  const manifests = path.join(dir, 'manifests');
  await mkdir(manifests);
  await writeFile(
    path.join(manifests, 'web.yaml'),
    `${serviceYaml('web', ip(1), [{ name: 'http', port: 8080 }])}---\n${sliceYaml('web', 'web-1', [{ name: 'http', port: pod.port }], [{ ip: pod.host }])}`,
  );
  // Started from the temp folder, so nothing of the project's tree is on its way.
  const proxy = spawn(bin, ['--manifests', manifests, '--healthz-bind-address=', '--metrics-bind-address='], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proxy.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | string>((resolve) => proxy.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  t.teardown(() => void proxy.kill('SIGKILL'));

  const curl = (): Promise<string> => run('curl', ['--silent', '--max-time', '5', `http://${ip(1)}:8080/through-the-installed-bin`]).then((r) => r.stdout);
  const body = await waitFor('the installed proxy to answer', () => curl().catch(() => undefined), START_TIMEOUT_MS);
  t.is(body, 'through-the-installed-bin', stderr);
  proxy.kill('SIGTERM');
  t.is(await exited, 0, stderr);
});
