import { manifestNestingExceeded } from './manifest-nesting.js';
import type { LimitExceeded } from './manifest-nesting.js';

/**
 * Bounds on a manifest file, checked before it is parsed.
 *
 * Both YAML readers recurse once per nesting level, and their cost grows faster than the text:
 * a 4.5 MB Service whose spec is 3,000 nested block sequences kept js-yaml busy for seconds (40 s
 * on a loaded 2-core node) before overflowing the stack, and 100,000 nested flow mappings
 * (500 KB) cost about 5 s. No manifest the proxy reads needs more than a few dozen levels (a
 * Service is 6 deep; a CRD's schema in the same directory perhaps 40), so a file nested deeper
 * than maxDepth, or larger than maxBytes, is refused whole, with the limit in the reason, and
 * never reaches a reader. The scan (manifest-nesting.ts) is one pass over the characters (34 ms for a 1.9 MB file of
 * 10,000 Services on a loaded 2-core node; a hostile file stops it early). The plain reader
 * (plain-yaml-reader.ts) makes the same count as it reads, so only a file it leaves to the other
 * readers is scanned first. Cost within the limits is bounded by reading files off the main thread
 * (manifest-parse-thread.ts).
 */
export interface ManifestLimits {
  /** Largest file read, in bytes. */
  readonly maxBytes: number;
  /** Deepest nesting of block and flow collections. */
  readonly maxDepth: number;
}

/**
 * 16 MiB: six times the 2.5 MB of a file holding 10,000 Services, while a Kubernetes object is
 * at most 1.5 MiB (etcd's limit) and an API request body 3 MiB.
 */
export const DEFAULT_MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
/** Well above any real object, well below what makes the readers recurse for seconds. */
export const DEFAULT_MAX_MANIFEST_DEPTH = 100;
export const DEFAULT_MANIFEST_LIMITS: ManifestLimits = { maxBytes: DEFAULT_MAX_MANIFEST_BYTES, maxDepth: DEFAULT_MAX_MANIFEST_DEPTH };

export { manifestNestingExceeded } from './manifest-nesting.js';
export type { LimitExceeded } from './manifest-nesting.js';

/** Why a file of `bytes` bytes is not read, or undefined when it may be. */
export function manifestSizeExceeded(bytes: number, limits: ManifestLimits = DEFAULT_MANIFEST_LIMITS): string | undefined {
  if (bytes <= limits.maxBytes) return undefined;
  return `file is ${bytes} bytes, over the limit of ${limits.maxBytes} bytes for a manifest; not parsed`;
}

/** The first limit the text goes over; undefined when within. */
export function manifestLimitExceeded(text: string, limits: ManifestLimits = DEFAULT_MANIFEST_LIMITS): LimitExceeded | undefined {
  return manifestTextSizeExceeded(text, limits) ?? manifestNestingExceeded(text, limits.maxDepth);
}

/** The size limit, for a text already read. */
export function manifestTextSizeExceeded(text: string, limits: ManifestLimits = DEFAULT_MANIFEST_LIMITS): LimitExceeded | undefined {
  // A UTF-16 code unit is at most 3 bytes of UTF-8: most texts need no count.
  if (text.length * 3 <= limits.maxBytes) return undefined;
  const size = manifestSizeExceeded(Buffer.byteLength(text, 'utf8'), limits);
  return size ? { document: 1, reason: size } : undefined;
}
