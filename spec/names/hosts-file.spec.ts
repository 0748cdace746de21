import { execFile, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, statSync, symlinkSync, lstatSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { HostsFileError } from '../../lib/errors.js';
import { renderHostsBlock } from '../../lib/names/hosts-block.js';
import { editHostsFile, HostsFile, removeHostsBlock } from '../../lib/names/hosts-file.js';
import { ROOT } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';

const run = promisify(execFile);
const ORIGINAL = '127.0.0.1\tlocalhost\n# keep me   \n::1 ip6-localhost\n';
const web = renderHostsBlock([{ ip: '127.1.0.5', names: ['web.shop.svc.cluster.local', 'web.shop', 'web'] }]);

async function hostsFile(t: ExecutionContext, text = ORIGINAL): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-hosts-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'hosts');
  await writeFile(file, text);
  return { dir, file };
}

test('writes the block, leaves no temp file, keeps the file mode; the same block again is no write', async (t) => {
  const { dir, file } = await hostsFile(t);
  chmodSync(file, 0o640);
  t.true(editHostsFile(file, web));
  t.is(await readFile(file, 'utf8'), ORIGINAL + web);
  t.is(statSync(file).mode & 0o777, 0o640);
  t.deepEqual(await readdir(dir), ['hosts']);
  t.false(editHostsFile(file, web));
});

test("another program's edit between the read and the write is kept: the edit starts again from its text", async (t) => {
  const { file } = await hostsFile(t);
  const attempts: number[] = [];
  editHostsFile(file, web, {
    beforeCommit: (target, attempt) => {
      attempts.push(attempt);
      if (attempt === 1) appendFileSync(target, '10.9.9.9 added-meanwhile\n');
    },
  });
  t.deepEqual(attempts, [1, 2]);
  t.is(await readFile(file, 'utf8'), `${ORIGINAL}10.9.9.9 added-meanwhile\n${web}`);
});

test("a file changed under every attempt: a HostsFileError naming the file, and the file keeps the other program's text", async (t) => {
  const { file } = await hostsFile(t);
  let n = 0;
  const err = t.throws(() => editHostsFile(file, web, { beforeCommit: (target) => appendFileSync(target, `10.0.0.${++n} busy\n`) }), { instanceOf: HostsFileError });
  t.is(err?.code, 'KUP_ERR_HOSTS_FILE');
  t.regex(err!.message, new RegExp(`hosts file ${file}: another program changed it during each of 5 attempts`));
  t.false((await readFile(file, 'utf8')).includes('kube-userspace-proxy'));
});

test('a symlinked hosts file is edited where it points and stays a symlink', async (t) => {
  const { dir, file } = await hostsFile(t);
  const link = path.join(dir, 'link');
  symlinkSync(file, link);
  editHostsFile(link, web);
  t.true(lstatSync(link).isSymbolicLink());
  t.is(await readFile(file, 'utf8'), ORIGINAL + web);
});

test('removeHostsBlock (--cleanup) takes exactly the block; a file without one, or none at all, is left alone', async (t) => {
  const { dir, file } = await hostsFile(t);
  writeFileSync(file, `a\n${web}b\n`);
  t.true(removeHostsBlock(file));
  t.is(await readFile(file, 'utf8'), 'a\nb\n');
  t.false(removeHostsBlock(file));
  t.false(removeHostsBlock(path.join(dir, 'missing')));
  t.deepEqual(await readdir(dir), ['hosts']);
});

test('HostsFile: debounced publishes end in the last one; close removes the block; publish after close does nothing', async (t) => {
  const { file } = await hostsFile(t);
  const hosts = new HostsFile({ path: file, debounceMs: 20 });
  t.teardown(() => hosts.destroy());
  for (let i = 1; i <= 20; i++) hosts.publish([{ ip: `127.1.0.${i}`, names: ['web.shop'] }]);
  await waitFor('the last entries written', async () => (await readFile(file, 'utf8')).includes('127.1.0.20\tweb.shop\n'));
  t.false((await readFile(file, 'utf8')).includes('127.1.0.19\t'));
  await hosts.close();
  t.is(await readFile(file, 'utf8'), ORIGINAL);
  hosts.publish([{ ip: '127.1.0.1', names: ['late'] }]);
  await hosts.close();
  t.is(await readFile(file, 'utf8'), ORIGINAL);
});

test('HostsFile: a block another program dropped (the file regenerated) is put back at the next publish, same entries or not', async (t) => {
  const { file } = await hostsFile(t);
  const hosts = new HostsFile({ path: file, debounceMs: 10 });
  t.teardown(() => hosts.destroy());
  const entries = [{ ip: '127.1.0.5', names: ['web.shop'] }];
  hosts.publish(entries);
  await waitFor('the block', async () => (await readFile(file, 'utf8')).includes('127.1.0.5'));
  await writeFile(file, '127.0.0.1 regenerated\n');
  hosts.publish(entries);
  await waitFor('the block back', async () => (await readFile(file, 'utf8')).includes('127.1.0.5'));
  t.is(await readFile(file, 'utf8'), `127.0.0.1 regenerated\n${renderHostsBlock(entries)}`);
});

test('HostsFile: a file that cannot be written is an error it reports, then written once it can be', async (t) => {
  const { dir } = await hostsFile(t);
  // A directory where the file should be: unwritable even for root.
  const file = path.join(dir, 'sub', 'hosts');
  const hosts = new HostsFile({ path: file, debounceMs: 10 });
  t.teardown(() => hosts.destroy());
  hosts.publish([{ ip: '127.1.0.5', names: ['web.shop'] }]);
  const error = await waitFor('the write to fail', () => hosts.lastError);
  t.regex(error, new RegExp(`^cannot update hosts file ${file}: ENOENT`));
  await import('node:fs/promises').then((fs) => fs.mkdir(path.join(dir, 'sub')));
  hosts.publish([{ ip: '127.1.0.6', names: ['web.shop'] }]);
  await waitFor('the write to succeed', async () => hosts.lastError === undefined && (await readFile(file, 'utf8').catch(() => '')).includes('127.1.0.6'));
  hosts.destroy();
  t.is(await readFile(file, 'utf8'), '');
});

/**
 * getent reads /etc/hosts, so the real resolver is asked in a mount namespace of its own where a
 * temp file is bind-mounted over /etc/hosts, as /etc/hosts is in a container. That also takes the
 * in-place path: renaming onto a mount point fails with EBUSY.
 */
const canUnshare = spawnSync('unshare', ['-m', 'true']).status === 0;
const mustRun = process.env['CI'] === 'true';
const mountTest = canUnshare || mustRun ? test : test.skip;
if (!canUnshare && !mustRun) test('getent: skipped (needs unshare -m and mount: root); with CI=true it runs', (t) => t.log('skipped'));

mountTest('getent hosts resolves every name of the block in a bind-mounted /etc/hosts (rename fails EBUSY: written in place)', async (t) => {
  const { file } = await hostsFile(t);
  const script = [
    `import { HostsFile } from '${ROOT}dist/lib/names/hosts-file.js';`,
    `const h = new HostsFile({ path: '/etc/hosts', debounceMs: 0 });`,
    `h.publish([{ ip: '127.1.0.5', names: ['web.shop.svc.cluster.local', 'web.shop', 'web'] }, { ip: '127.1.0.6', names: ['db.shop.svc.cluster.local', 'db.shop'] }]);`,
    `setTimeout(() => {}, 50);`,
  ].join(' ');
  const sh = [
    `mount --bind '${file}' /etc/hosts`,
    `node --input-type=module -e "${script.replace(/"/g, '\\"')}"`,
    'getent hosts web.shop.svc.cluster.local web.shop web db.shop',
    'echo ---',
    'getent hosts db || echo "db: not found"',
  ].join(' && ');
  const inode = statSync(file).ino;
  const { stdout } = await run('unshare', ['-m', 'sh', '-c', sh]);
  t.is(statSync(file).ino, inode, 'written in place: a rename would have replaced the inode');
  const [found, missing] = stdout.split('---\n');
  t.deepEqual(
    found!
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/).slice(0, 2).join(' ')),
    ['127.1.0.5 web.shop.svc.cluster.local', '127.1.0.5 web.shop.svc.cluster.local', '127.1.0.5 web.shop.svc.cluster.local', '127.1.0.6 db.shop.svc.cluster.local'],
  );
  t.is(missing!.trim(), 'db: not found');
  const text = await readFile(file, 'utf8');
  t.true(text.startsWith(ORIGINAL), 'the lines before the block are as they were');
  t.regex(text, /127\.1\.0\.5\tweb\.shop\.svc\.cluster\.local web\.shop web\n/);
  t.deepEqual(
    (await readdir('/etc')).filter((f) => f.includes('kube-userspace-proxy')),
    [],
    'the temp file beside it is gone',
  );
});
