import test from 'ava';
import { oddKeyColon, quickReadable } from '../../lib/source/yaml-quick-check.js';
import { SeededRandom } from '../helpers/seeded-random.js';

// The patterns quickReadable stands for, as they were written: it must say exactly what they say.
const FLOW_KEY = /[\]}][ \t]*:(?:[ \t\r\n]|$)/m;
const NULL_KEY = /(?:^|[\s[{,])(?:~|[Nn]ull|NULL)?[ \t]*:(?:[ \t\r\n]|$)/m;
const NOT_QUICK = [/[\u2028\u2029\uFEFF]/, /^%/m, /^(?:\.\.\.|---[^ \t\r\n])/m, /(?:^|[\s[{,])[!*][^ \t\r\n[\]{},]/m, /(?:^|[\s[{,])\?(?:[ \t\r\n]|$)/m, FLOW_KEY, NULL_KEY];

const CHARACTERS = [':', ':', ' ', '\t', '\n', '\r', ']', '}', '[', '{', ',', '~', 'n', 'u', 'l', 'l', 'N', 'U', 'L', 'a', '\u00a0', '\u3000', '\u2028', '?', '!', '*', '%', '.', '-', '#', '"'];

test('the colon loop finds exactly what the flow-key and null-key patterns find', (t) => {
  const r = new SeededRandom(42);
  let found = 0;
  for (let i = 0; i < 30_000; i++) {
    const text = Array.from({ length: 1 + r.int(10) }, () => r.pick(CHARACTERS)).join('');
    const expected = FLOW_KEY.test(text) || NULL_KEY.test(text);
    if (expected) found++;
    if (oddKeyColon(text) !== expected) t.fail(`${JSON.stringify(text)}: ${!expected}, the patterns say ${expected}`);
  }
  t.true(found > 1000 && found < 29_000, `${found} of 30000 match`);
});

test('a text is quick-readable exactly when none of the patterns matches it', (t) => {
  const r = new SeededRandom(43);
  const words = ['a: b', 'null: x', ' ~: y', '[a]: b', '? a', 'a: !t', 'a: *x', '%YAML', '...', '---a', '---', '\uFEFF', 'k: v', '\n', ' ', 'Null :', 'x!y', '*'];
  for (let i = 0; i < 20_000; i++) {
    const text = Array.from({ length: 1 + r.int(6) }, () => (r.int(3) === 0 ? r.pick(CHARACTERS) : r.pick(words))).join('');
    const expected = !NOT_QUICK.some((p) => p.test(text));
    if (quickReadable(text) !== expected) t.fail(`${JSON.stringify(text)}: ${!expected}, the patterns say ${expected}`);
  }
  t.true(quickReadable('apiVersion: v1\nkind: Service\nmetadata: {name: a}\n'));
});
