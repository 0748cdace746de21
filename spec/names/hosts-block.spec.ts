import test from 'ava';
import { BEGIN_MARKER, END_MARKER, renderHostsBlock, replaceHostsBlock } from '../../lib/names/hosts-block.js';

const block = renderHostsBlock([{ ip: '127.1.0.5', names: ['web.shop.svc.cluster.local', 'web.shop', 'web'] }]);
const other = renderHostsBlock([{ ip: '127.1.0.9', names: ['db.shop.svc.cluster.local', 'db.shop', 'db'] }]);

test('the block is the marker lines around one tab-separated line per entry', (t) => {
  t.is(block, `${BEGIN_MARKER}: names of the Services it serves; rewritten while it runs, removed when it stops\n127.1.0.5\tweb.shop.svc.cluster.local web.shop web\n${END_MARKER}\n`);
  t.is(renderHostsBlock([]).split('\n').length, 3, 'no entries: the markers only');
});

test('appended to a file without a block; applying it again changes nothing', (t) => {
  const text = '127.0.0.1\tlocalhost\n::1\tip6-localhost\n';
  const once = replaceHostsBlock(text, block);
  t.is(once, text + block);
  t.is(replaceHostsBlock(once, block), once);
});

test('every other byte is kept: CRLF lines, comments, blanks, trailing spaces, bytes that are not UTF-8', (t) => {
  // Read as latin1, each byte is one character: 0xe9 stays 0xe9.
  const before = Buffer.from('# hosts \r\n127.0.0.1 localhost\r\n\r\n10.0.0.1 caf\xe9   \n', 'latin1').toString('latin1');
  const after = '\t10.0.0.2 last-line-without-newline';
  const text = before + block + after;
  const replaced = replaceHostsBlock(text, other);
  t.is(replaced, before + other + after, 'the block is replaced where it was');
  t.is(replaceHostsBlock(replaced, undefined), before + after, 'removal takes exactly the block');
});

test('appending after a last line without a newline adds one, and the rest stays', (t) => {
  t.is(replaceHostsBlock('127.0.0.1 localhost', block), `127.0.0.1 localhost\n${block}`);
  t.is(replaceHostsBlock('', block), block);
  t.is(replaceHostsBlock('', undefined), '');
});

test('a block with CRLF marker lines (an editor converted it) is still found and replaced', (t) => {
  const crlf = block.replace(/\n/g, '\r\n');
  t.is(replaceHostsBlock(`a\n${crlf}b\n`, other), `a\n${other}b\n`);
});

test('two blocks (two copies pasted) become one, at the place of the first', (t) => {
  t.is(replaceHostsBlock(`a\n${block}b\n${block}c\n`, other), `a\n${other}b\nc\n`);
});

test('a begin marker whose end marker was deleted: only the marker line goes, the lines after it stay', (t) => {
  const broken = `a\n${BEGIN_MARKER}: x\n10.0.0.1 mine\n`;
  t.is(replaceHostsBlock(broken, undefined), 'a\n10.0.0.1 mine\n');
  t.is(replaceHostsBlock(broken, block), `a\n${block}10.0.0.1 mine\n`);
});

test('an end marker alone, or a line that only mentions the project, is not ours', (t) => {
  const text = `${END_MARKER}\n# kube-userspace-proxy was here\n127.0.0.1 localhost\n`;
  t.is(replaceHostsBlock(text, undefined), text);
});
