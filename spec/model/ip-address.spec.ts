import { execFileSync } from 'node:child_process';
import test from 'ava';
import ipaddr from 'ipaddr.js';
import { parseIP } from '../../lib/model/ip-address.js';

// parseIP reads the common dotted quad itself and leaves every other form to ipaddr.js: the two
// must agree on which IPv4 texts are valid.
const NEAR_MISSES = [
  '0.0.0.0',
  '255.255.255.255',
  '127.100.40.250',
  '256.1.1.1',
  '1.2.3.256',
  '1000.1.1.1',
  '01.2.3.4',
  '1.2.3.04',
  '00.0.0.0',
  '1.2.3',
  '1.2.3.4.5',
  '0x1.2.3.4',
  '1.2.3.4 ',
  ' 1.2.3.4',
  '1.2.3.4\n',
  '1..3.4',
  '1.2.3.',
  '+1.2.3.4',
  '1.2.3.4/32',
  '１.2.3.4',
  '',
];

test('a dotted quad is valid exactly when ipaddr.js says it is a four-part decimal', (t) => {
  for (const text of NEAR_MISSES) {
    t.is(parseIP(text)?.family === 'IPv4', ipaddr.IPv4.isValidFourPartDecimal(text), JSON.stringify(text));
  }
});

test('random digit-and-dot texts are read as ipaddr.js reads them', (t) => {
  let seed = 7;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  let valid = 0;
  for (let i = 0; i < 20_000; i++) {
    // Three to five parts of zero to four digits each, mostly four parts.
    const parts = [3, 4, 4, 4, 4, 5][next(6)]!;
    const text = Array.from({ length: parts }, () => Array.from({ length: next(5) }, () => String(next(10) < 3 ? next(3) : next(10))).join('')).join('.');
    const expected = ipaddr.IPv4.isValidFourPartDecimal(text);
    if (expected) valid++;
    t.is(parseIP(text)?.family === 'IPv4', expected, JSON.stringify(text));
  }
  // The texts must exercise both answers.
  t.true(valid > 50, `${valid} valid texts`);
});

test('a valid IPv4 address is returned as written', (t) => {
  t.deepEqual(parseIP('10.0.0.1'), { family: 'IPv4', address: '10.0.0.1' });
  t.is(parseIP('10.0.0.01'), undefined);
});

test('a dotted quad is read without loading ipaddr.js, which other forms load', (t) => {
  // A process of its own: this one has loaded ipaddr.js above.
  const loaded = (address: string): boolean => {
    const script = `import { createRequire } from 'node:module';
      const { parseIP } = await import(${JSON.stringify(new URL('../../lib/model/ip-address.js', import.meta.url).href)});
      if (parseIP(${JSON.stringify(address)}) === undefined) throw new Error('not an address');
      process.stdout.write(String(Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('ipaddr.js'))));`;
    return execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }) === 'true';
  };
  t.false(loaded('10.1.2.3'));
  t.true(loaded('fd00::1'));
});
