import type { ManifestEntry } from './manifest-parser.js';

/*
 * One file's entries on their way from the parse thread to the main thread: JSON text, or the
 * entries themselves (a structured clone) when JSON cannot carry them exactly.
 *
 * JSON is the cheaper form where it counts: V8's JSON.parse is a native, one-pass reader and gives
 * short strings (up to 9-10 characters) as internalized strings, one instance for every `TCP`,
 * `ClusterIP`, `IPv4` or namespace, where a structured clone makes a new string for each. Receiving
 * the 10 files of a start-up from 10,000 Services cost the main thread about 130-140 ms by clone.
 *
 * The delivered objects must be exactly what parseManifest gave: the merge and the delivery
 * compare them with isDeepStrictEqual, for which a key holding undefined differs from an absent
 * key, and -0 from 0. JSON drops the first and writes the second as 0. So:
 * - the keys that the entries keep with the value undefined (an entry's `object`, a slice's
 *   `ports`, an endpoint's `hints`) travel as null and are set back; no other value of an entry
 *   is ever null (the models read null as "not given"), nor undefined but for keys left out;
 * - the one number that can be -0 is a service port's `nodePort` (the only range that starts at
 *   0; the others start at 1, and durations are never negative): a file with one goes by clone.
 */

/**
 * `entries` as JSON text for entriesFromJson, or undefined (leaving them as they are) when JSON
 * cannot carry them exactly. The entries are given away: they are changed.
 */
export function entriesToJson(entries: ManifestEntry[]): string | undefined {
  if (entries.some(hasNegativeZero)) return undefined;
  for (const entry of entries) withNulls(entry);
  return JSON.stringify(entries);
}

/** Whether JSON would write the entry's -0 as 0. */
export function hasNegativeZero(entry: ManifestEntry): boolean {
  return entry.type === 'service' && entry.service.ports.some((p) => Object.is(p.nodePort, -0));
}

/** The entry, its keys holding undefined now holding null. */
export function withNulls(entry: ManifestEntry): ManifestEntry {
  const writable = entry as unknown as Writable;
  if (writable.object === undefined) writable.object = null;
  if (writable.type === 'slices') {
    for (const slice of writable.slices) {
      if (slice.ports === undefined) slice.ports = null;
      for (const endpoint of slice.endpoints) if (endpoint.hints === undefined) endpoint.hints = null;
    }
  }
  return entry;
}

/** The entries entriesToJson was given. */
export function entriesFromJson(json: string): ManifestEntry[] {
  const entries = JSON.parse(json) as Writable[];
  for (const entry of entries) {
    if (entry.object === null) entry.object = undefined;
    if (entry.type !== 'slices') continue;
    for (const slice of entry.slices) {
      if (slice.ports === null) slice.ports = undefined;
      for (const endpoint of slice.endpoints) if (endpoint.hints === null) endpoint.hints = undefined;
    }
  }
  return entries as unknown as ManifestEntry[];
}

/** The parts of an entry that travel as null, as they are written on either side. */
interface Writable {
  type: ManifestEntry['type'];
  object: string | null | undefined;
  slices: Array<{ ports: unknown; endpoints: Array<{ hints: unknown }> }>;
}
