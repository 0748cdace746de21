import test from 'ava';
import { formatPortRange, parsePortRange } from '../../lib/config/port-range.js';

const cases: Array<[string, ReturnType<typeof parsePortRange>]> = [
  ['', undefined],
  ['  ', undefined],
  ['30000-30009', { base: 30000, size: 10 }],
  ['30000+9', { base: 30000, size: 10 }],
  ['8080', { base: 8080, size: 1 }],
  ['1-65535', { base: 1, size: 65535 }],
];
for (const [text, want] of cases) {
  test(`parses "${text}"`, (t) => {
    t.deepEqual(parsePortRange(text), want);
  });
}

for (const bad of ['0-10', '10-5', '65535+1', 'abc', '1-2-3', '-5', '70000']) {
  test(`rejects "${bad}" with a reason`, (t) => {
    t.is(typeof parsePortRange(bad), 'string');
  });
}

test('formats ranges back', (t) => {
  t.is(formatPortRange({ base: 30000, size: 10 }), '30000-30009');
  t.is(formatPortRange({ base: 8080, size: 1 }), '8080');
  t.is(formatPortRange(undefined), '');
});
