import test from 'ava';
import { UdpSessionTable } from '../../../lib/proxy/udp/udp-session-table.js';
import type { RemovalReason, TableEntry } from '../../../lib/proxy/udp/udp-session-table.js';
import { waitFor } from '../../helpers/wait-for.js';

class Entry implements TableEntry {
  lastActiveMs = 0;
  olderEntry: TableEntry | undefined = undefined;
  newerEntry: TableEntry | undefined = undefined;
  constructor(readonly key: string) {}
}

function table(idleMs: number, max: number, now: () => number = Date.now) {
  const removed: string[] = [];
  const t = new UdpSessionTable<Entry>(idleMs, max, (e: Entry, reason: RemovalReason) => removed.push(`${e.key}:${reason}`), now);
  return { t, removed };
}

test('eviction takes the least recently active session, whatever order they were added in', (t) => {
  const { t: tab, removed } = table(60_000, 10);
  const [a, b, c] = [new Entry('a'), new Entry('b'), new Entry('c')];
  tab.add(a);
  tab.add(b);
  tab.add(c);
  tab.touch(a);
  tab.touch(b);
  t.is(tab.evictOldest(), c);
  t.is(tab.evictOldest(), a);
  tab.touch(b);
  t.is(tab.evictOldest(), b);
  t.is(tab.evictOldest(), undefined);
  t.deepEqual(removed, ['c:evicted', 'a:evicted', 'b:evicted']);
  t.is(tab.size, 0);
});

test('a deleted session is not brought back by a late touch, and its neighbours stay in order', (t) => {
  const { t: tab } = table(60_000, 10);
  const [a, b, c] = [new Entry('a'), new Entry('b'), new Entry('c')];
  tab.add(a);
  tab.add(b);
  tab.add(c);
  tab.delete(b);
  tab.touch(b);
  tab.delete(b);
  t.is(tab.size, 2);
  t.is(tab.get('b'), undefined);
  t.is(tab.evictOldest(), a);
  t.is(tab.evictOldest(), c);
  t.is(tab.evictOldest(), undefined);
});

test('the sweep removes idle sessions only, oldest first, and clear() returns the rest without reporting them', async (t) => {
  let now = 1_000;
  const { t: tab, removed } = table(50, 10, () => now);
  const [a, b, c] = [new Entry('a'), new Entry('b'), new Entry('c')];
  tab.add(a);
  tab.add(b);
  now += 30;
  tab.add(c);
  tab.touch(a);
  now += 30; // b is 60 ms idle; a and c 30 ms.
  await waitFor('b swept', () => removed.length === 1);
  t.deepEqual(removed, ['b:idle']);
  t.deepEqual(
    tab
      .clear()
      .map((e) => e.key)
      .sort(),
    ['a', 'c'],
  );
  t.is(tab.size, 0);
  t.is(tab.evictOldest(), undefined);
});
