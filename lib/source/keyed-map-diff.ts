import { isDeepStrictEqual } from 'node:util';

/** How many entries a diff found added, updated (deeply different) and removed. */
export interface KeyedMapDiff {
  readonly added: number;
  readonly updated: number;
  readonly removed: number;
}

/**
 * Calls `visit` for every key whose value differs between two maps (deep equality; a value that
 * is the very same object is equal without looking inside, which keeps a rescan of thousands of
 * unchanged objects cheap). Keys present in `previous` come first in its order, then the added
 * keys in `current`'s order; with `sorted`, all keys in sorted order instead.
 */
export function diffKeyedMaps<K extends string, V>(
  previous: ReadonlyMap<K, V>,
  current: ReadonlyMap<K, V>,
  visit: (key: K, before: V | undefined, after: V | undefined) => void,
  options: { readonly sorted?: boolean } = {},
): KeyedMapDiff {
  let added = 0;
  let updated = 0;
  let removed = 0;
  const changed: K[] = [];
  const compare = (key: K): void => {
    const before = previous.get(key);
    const after = current.get(key);
    if (before === after || isDeepStrictEqual(before, after)) return;
    if (before === undefined) added++;
    else if (after === undefined) removed++;
    else updated++;
    if (options.sorted) changed.push(key);
    else visit(key, before, after);
  };
  for (const key of previous.keys()) compare(key);
  for (const key of current.keys()) if (!previous.has(key)) compare(key);
  // Sorting only what changed: a rescan that changed one object of 10,000 sorts one key.
  if (options.sorted) for (const key of changed.sort()) visit(key, previous.get(key), current.get(key));
  return { added, updated, removed };
}
