import { createHash } from 'node:crypto';
import type fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ManifestError } from '../errors.js';
import { logger } from '../log.js';
import { manifestSizeExceeded } from './manifest-limits.js';
import type { ManifestListing } from './manifest-listing.js';
import type { ManifestFileChange } from './manifest-merge.js';
import { isGone } from './manifest-listing.js';
import { ManifestParseThread } from './manifest-parse-thread.js';
import type { ManifestEntry } from './manifest-parser.js';
import { objectsOfEntries } from './manifest-objects.js';
import type { ManifestObject, ManifestRejection } from './manifest-objects.js';

const log = logger('manifests');

export type { ManifestObject, ManifestRejection } from './manifest-objects.js';

/** What was last loaded from one file. */
interface FileState {
  /** dev, ino, size, mtime and ctime: a change in any of them means "read again". */
  readonly signature: string;
  /** sha256 of the text; undefined when the file could not be read. */
  readonly hash: string | undefined;
  /** Modified so recently that a same-size rewrite within the timestamp granularity could hide; read again next time. */
  readonly racy: boolean;
  /** Object key (`Kind namespace/name`) → object, in document order. */
  readonly objects: ReadonlyMap<string, ManifestObject>;
}

export interface ManifestFileCacheOptions {
  /** --service-proxy-name, passed on to the parser. */
  readonly serviceProxyName: string | undefined;
  /** Called (after the error line) for every object or file that was not applied. */
  readonly onReject: ((rejection: ManifestRejection) => void) | undefined;
}

/** What reading one file found: it is gone, unchanged, unreadable (with its signature), or its new entries. */
type FileRead =
  | { readonly gone: true }
  | { readonly same: FileState }
  | { readonly unreadable: string; readonly err: unknown }
  | { readonly cut: true }
  | { readonly signature: string; readonly hash: string; readonly racy: boolean; readonly entries: ManifestEntry[] };

/** Coarser than any local file system's timestamps (ext4's are a kernel tick; FAT's are 2 s). */
const RACY_WINDOW_MS = 2000;

/**
 * The objects of every manifest file, re-read only when a file's stat changed and re-parsed only
 * when its text did. A document that fails to parse or validate is rejected (one error line, and
 * onReject) and the object's last good state stays in force; so does a file that cannot be read.
 */
export class ManifestFileCache {
  readonly #proxyName: string | undefined;
  readonly #onReject: ((rejection: ManifestRejection) => void) | undefined;
  /** Files are parsed off the event loop, within size, nesting, time and memory limits (see ManifestParseThread). */
  readonly #parsers = [new ManifestParseThread()];
  #files = new Map<string, FileState>();
  #closed = false;

  constructor(options: ManifestFileCacheOptions) {
    this.#proxyName = options.serviceProxyName;
    this.#onReject = options.onReject;
  }

  get size(): number {
    return this.#files.size;
  }

  /** file → its objects, in path order. */
  *objectsByFile(): IterableIterator<[string, ReadonlyMap<string, ManifestObject>]> {
    for (const file of [...this.#files.keys()].sort()) yield [file, this.#files.get(file)!.objects];
  }

  /**
   * Brings the cache in line with a listing: loads what changed, forgets files gone from it
   * (but keeps those in directories that could not be listed). Resolves to the files whose
   * objects changed, or to undefined when the cache was closed meanwhile.
   *
   * `threads` files are parsed at once, each on a parse thread of its own, which is sent its next
   * file before it is done with one (it was idle a third of a 10-file start-up waiting for it).
   * What they read is applied in path order, as one thread would give it.
   */
  async refresh(listing: ManifestListing, threads = 1): Promise<ManifestFileChange[] | undefined> {
    while (this.#parsers.length < threads) this.#parsers.push(new ManifestParseThread());
    const next = new Map<string, FileState>();
    const files = listing.files;
    const reads: Array<Promise<FileRead>> = [];
    let started = 0;
    const startNext = (parser: ManifestParseThread): void => {
      if (started >= files.length || this.#closed) return;
      const file = files[started++]!;
      const read = this.#read(file, this.#files.get(file), parser);
      reads.push(read);
      void read.then(() => startNext(parser));
    };
    try {
      for (const parser of this.#parsers.slice(0, Math.max(1, threads))) for (let i = 0; i < 2; i++) startNext(parser);
      for (let i = 0; i < reads.length; i++) {
        const read = await reads[i]!;
        if (this.#closed) return undefined;
        const state = this.#apply(files[i]!, this.#files.get(files[i]!), read);
        if (state) next.set(files[i]!, state);
      }
    } finally {
      for (const parser of this.#parsers) parser.release();
      this.#parsers.length = 1;
    }
    for (const [file, state] of this.#files) {
      if (next.has(file)) continue;
      if (listing.unlisted.some((dir) => file.startsWith(dir + path.sep))) next.set(file, state);
      else log.info('manifest file removed', { file });
    }
    const changes: ManifestFileChange[] = [];
    for (const [file, state] of next) {
      const before = this.#files.get(file)?.objects;
      if (before !== state.objects) changes.push({ file, before, after: state.objects });
    }
    for (const [file, state] of this.#files) if (!next.has(file)) changes.push({ file, before: state.objects, after: undefined });
    this.#files = next;
    return changes;
  }

  /**
   * Reads these files (named by file-system events) for what they add, while they may still be
   * half-written: a file that is gone, cannot be read, ends mid-line (YAML) or has a document that
   * fails is left as it was, unreported, for refresh() to read and report once the files are
   * quiet. Resolves to the files whose objects changed, or to undefined once closed.
   */
  async readNamed(files: readonly string[]): Promise<ManifestFileChange[] | undefined> {
    const changes: ManifestFileChange[] = [];
    const parser = this.#parsers[0]!;
    try {
      for (const file of [...files].sort()) {
        const prev = this.#files.get(file);
        const read = await this.#read(file, prev, parser, true);
        if (this.#closed) return undefined;
        if (!('entries' in read) || read.entries.some((entry) => entry.type === 'rejected')) continue;
        const objects = objectsOfEntries(file, read.entries, prev?.objects, () => {});
        this.#files.set(file, { signature: read.signature, hash: read.hash, racy: read.racy, objects });
        changes.push({ file, before: prev?.objects, after: objects });
      }
    } finally {
      parser.release();
    }
    return changes;
  }

  close(): void {
    this.#closed = true;
    for (const parser of this.#parsers) parser.close();
  }

  /**
   * Re-reads a file only when its stat changed, and parses it only when its text did; nothing is
   * logged here. With `whole` (a reading before the files are quiet), YAML text that does not end
   * a line is not parsed (`cut`): a writer stopped in the middle of `port: 8080` would otherwise
   * give port 80.
   */
  async #read(file: string, prev: FileState | undefined, parser: ManifestParseThread, whole = false): Promise<FileRead> {
    let st: fs.BigIntStats;
    try {
      st = await fsp.stat(file, { bigint: true });
    } catch (err) {
      if (isGone(err)) return { gone: true };
      return { unreadable: `error:${(err as NodeJS.ErrnoException).code ?? ''}`, err };
    }
    if (!st.isFile()) return { gone: true };
    const signature = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    // A racy file is read again by the rescan, which follows every event; this reading need not.
    if (prev && prev.signature === signature && (whole || !prev.racy)) return { same: prev };
    const racy = Date.now() - Number(st.mtimeMs) < RACY_WINDOW_MS;
    const tooLarge = manifestSizeExceeded(Number(st.size));
    if (tooLarge) return { unreadable: signature, err: new ManifestError(file, tooLarge) };
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if (isGone(err)) return { gone: true };
      return { unreadable: signature, err };
    }
    if (whole && text !== '' && !text.endsWith('\n') && !file.toLowerCase().endsWith('.json')) return { cut: true };
    const hash = createHash('sha256').update(text).digest('hex');
    if (prev && prev.hash === hash) return { same: { ...prev, signature, racy } };
    let entries: ManifestEntry[];
    try {
      entries = await parser.parse(text, file, this.#proxyName === undefined ? {} : { serviceProxyName: this.#proxyName });
    } catch (err) {
      entries = [{ document: 1, type: 'rejected', object: undefined, field: '', reason: (err as Error).message }];
    }
    return { signature, hash, racy, entries };
  }

  /** The file's new state from what #read found; undefined when it no longer exists. */
  #apply(file: string, prev: FileState | undefined, read: FileRead): FileState | undefined {
    if ('gone' in read || 'cut' in read) return undefined;
    if ('same' in read) return read.same;
    if ('unreadable' in read) return this.#unreadable(file, prev, read.unreadable, read.err);
    return { signature: read.signature, hash: read.hash, racy: read.racy, objects: objectsOfEntries(file, read.entries, prev?.objects, (r) => this.#reject(r)) };
  }

  /** A file that cannot be read keeps its last good objects; reported once per change of its stat. */
  #unreadable(file: string, prev: FileState | undefined, signature: string, err: unknown): FileState {
    if (prev?.signature !== signature) {
      this.#reject({ file, document: 0, object: 'unknown', field: '', reason: `cannot read file: ${(err as Error).message}` });
    }
    return { signature, hash: undefined, racy: false, objects: prev?.objects ?? new Map() };
  }

  #reject(rejection: ManifestRejection): void {
    log.error('rejected manifest object', { ...rejection });
    try {
      this.#onReject?.(rejection);
    } catch (err) {
      log.error('manifest onReject callback failed', { error: (err as Error).message });
    }
  }
}
