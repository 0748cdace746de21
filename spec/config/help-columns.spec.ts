import test from 'ava';
import { helpColumns } from '../../lib/config/help-columns.js';
import { usage } from '../../lib/config/flags.js';

test('a flag that fits its column is followed by its description on the same line', (t) => {
  t.deepEqual(helpColumns([['  --bind-address IP', 'address listeners bind to']]), ['  --bind-address IP'.padEnd(32) + 'address listeners bind to']);
});

test('a flag too long for its column puts the description on the next line, in the column', (t) => {
  const left = '  --iptables-min-sync-period DURATION';
  t.deepEqual(helpColumns([[left, 'another name']]), [left, `${' '.repeat(32)}another name`]);
  // Exactly one space short of the gap: still its own line, never "FLAGdescription".
  const edge = `  --${'x'.repeat(27)}`;
  t.is(edge.length, 31);
  t.deepEqual(helpColumns([[edge, 'text']]), [edge, `${' '.repeat(32)}text`]);
});

test('long descriptions wrap at words within 100 columns; a no-break space holds words together', (t) => {
  const words = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
  const lines = helpColumns([['  --flag', `${words} (default\u00a0derived\u00a0from\u00a0the\u00a0limit)`]]);
  t.true(lines.length > 2);
  for (const line of lines) t.true(line.length <= 100, line);
  for (const line of lines.slice(1)) t.regex(line, /^ {32}\S/);
  t.is(lines.join(' ').replace(/ +/g, ' ').trim(), `--flag ${words} (default derived from the limit)`);
  t.true(lines.some((l) => l.endsWith('(default derived from the limit)')));
});

test('--help: every line within 100 columns, and every flag line has a gap before its description', (t) => {
  const flagLines = usage('kube-userspace-proxy')
    .split('\n')
    .slice(usage('kube-userspace-proxy').split('\n').indexOf('Flags:') + 1);
  for (const line of flagLines) {
    t.true(line.length <= 100, line);
    // Either a flag (with at least two spaces before its description, or alone) or a continuation.
    t.regex(line, /^(?: {2}(?:-[a-z], )?--\S+(?: \S+)?(?: {2,}\S.*)?| {32}\S.*)$/, line);
  }
});
