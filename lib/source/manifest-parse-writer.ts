import { DEFAULT_MANIFEST_LIMITS } from './manifest-limits.js';
import { forEachManifestEntry } from './manifest-parser.js';
import type { ClassifyOptions, ManifestEntry } from './manifest-parser.js';
import { hasNegativeZero, withNulls } from './manifest-parse-wire.js';

/**
 * Entries written by one JSON.stringify. Each call has a cost of its own: written one by one, the
 * entries of 10,000 Services took about 100 ms of CPU, 32 at a time about 80, all at once about 70.
 */
const BATCH = 32;

/**
 * The entries of one file as entriesToJson writes them, written as they are read (see
 * forEachManifestEntry), so that only their text outlives the next few documents; undefined when
 * JSON cannot carry them exactly (then read the file with parseManifest, to send the entries as
 * they are).
 */
export function manifestToJson(text: string, fileName: string, options: ClassifyOptions): string | undefined {
  /** The texts of the batches written, each without its brackets. */
  const parts: string[] = [];
  const batch: ManifestEntry[] = [];
  let exact = true;
  const write = (): void => {
    parts.push(JSON.stringify(batch).slice(1, -1));
    batch.length = 0;
  };
  forEachManifestEntry(text, fileName, DEFAULT_MANIFEST_LIMITS, options, {
    add: (entry) => {
      if (!exact) return;
      if (hasNegativeZero(entry)) exact = false;
      else if (batch.push(withNulls(entry)) === BATCH) write();
    },
    restart: () => {
      parts.length = 0;
      batch.length = 0;
      exact = true;
    },
  });
  if (!exact) return undefined;
  if (batch.length > 0) write();
  return `[${parts.join(',')}]`;
}
