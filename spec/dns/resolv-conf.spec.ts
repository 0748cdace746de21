import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { parseNameservers, ResolvConf } from '../../lib/dns/resolv-conf.js';

test('nameserver lines as glibc reads them: IP addresses only, at most three, comments and options ignored', (t) => {
  const text = '# generated\nsearch corp.example\nnameserver 192.0.2.53\n  nameserver fd00::53\nnameserver dns.example\nnameserver 192.0.2.54\nnameserver 192.0.2.55\noptions edns0\n';
  t.deepEqual(parseNameservers(text), ['192.0.2.53', 'fd00::53', '192.0.2.54']);
  t.deepEqual(parseNameservers(''), []);
});

test('the file is read again when it changes; a missing file is a reason, not an exception', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-resolv-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'resolv.conf');
  const conf = new ResolvConf(file);
  const missing = await conf.nameservers(1_000);
  t.deepEqual(missing.servers, []);
  t.regex(missing.error ?? '', /ENOENT/);
  await writeFile(file, 'nameserver 192.0.2.1\n');
  // Within a second of the last look the file is not looked at again...
  t.deepEqual((await conf.nameservers(1_500)).servers, []);
  // ...after that it is.
  t.deepEqual(await conf.nameservers(2_000), { servers: ['192.0.2.1'], error: undefined });
  await writeFile(file, '# none\n');
  t.deepEqual(await conf.nameservers(3_000), { servers: [], error: 'has no nameserver line' });
});
