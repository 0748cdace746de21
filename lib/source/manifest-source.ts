import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { ClosedError, InvalidConfigError, ManifestError, ProxyError } from '../errors.js';
import { logger } from '../log.js';
import { keyOfSlice } from '../model/endpoint-slice.js';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import type { NodeSpec } from '../model/node.js';
import { keyOfService } from '../model/service.js';
import type { ServiceSpec } from '../model/service.js';
import type { ServiceKey } from '../model/service-port-name.js';
import { manifestSizeExceeded } from './manifest-limits.js';
import { ManifestParseThread } from './manifest-parse-thread.js';
import type { ManifestEntry } from './manifest-parser.js';
import type { ServiceSource, ServiceSourceHandler } from './service-source.js';

const log = logger('manifests');

/** A manifest object (or a whole file) that was not applied; its last good state stays in force. */
export interface ManifestRejection {
  readonly file: string;
  /** 1-based document in the file; 0 when the file itself could not be read. */
  readonly document: number;
  /** 0-based index in the `items` of a List document. */
  readonly item?: number;
  /** `Service default/web`, or `unknown` when the document is too broken to tell. */
  readonly object: string;
  /** The field at fault, as `spec.ports[1].targetPort`; '' for the whole document or file. */
  readonly field: string;
  readonly reason: string;
}

export interface ManifestSourceOptions {
  /** Files and directories; directories are read recursively for *.yaml, *.yml and *.json. */
  readonly paths: readonly string[];
  /** Quiet time after a file-system event before rescanning (default 50 ms). */
  readonly debounceMs?: number;
  /** Period of the stat-only rescan that catches events fs.watch missed (default 2000 ms; 0 turns it off). */
  readonly rescanIntervalMs?: number;
  readonly onReject?: (rejection: ManifestRejection) => void;
  /** --service-proxy-name: Services labelled for another proxy are ignored, as from the API. */
  readonly serviceProxyName?: string;
  /** This node's name: a Node manifest of that name gives its labels and state (onNodeChange). */
  readonly nodeName?: string;
  /** --node-labels: this node's labels without a Node manifest; over one, they win key by key. */
  readonly nodeLabels?: Readonly<Record<string, string>>;
}

type FileObject =
  | { readonly type: 'service'; readonly service: ServiceSpec }
  | { readonly type: 'slices'; readonly slices: readonly EndpointSliceSpec[] }
  | { readonly type: 'node'; readonly node: NodeSpec };

/** What was last loaded from one file. */
interface FileState {
  /** dev, ino, size, mtime and ctime: a change in any of them means "read again". */
  readonly signature: string;
  /** sha256 of the text; undefined when the file could not be read. */
  readonly hash: string | undefined;
  /** Modified so recently that a same-size rewrite within the timestamp granularity could hide; read again next time. */
  readonly racy: boolean;
  /** Object key (`Kind namespace/name`) → object, in document order. */
  readonly objects: ReadonlyMap<string, FileObject>;
}

interface WatchedDir {
  readonly ino: number;
  /** The file names whose events matter, or null for every event (a directory being read whole). */
  names: Set<string> | null;
}

interface Listing {
  /** Every manifest file, absolute, sorted. */
  readonly files: readonly string[];
  readonly dirs: ReadonlyMap<string, WatchedDir>;
  /** Directories that exist but could not be listed: their files keep their last state. */
  readonly unlisted: readonly string[];
}

const DEFAULT_DEBOUNCE_MS = 50;
const DEFAULT_RESCAN_INTERVAL_MS = 2000;
/** A steady stream of events must not postpone a rescan for ever: at most this long (or debounceMs, if longer). */
const MAX_DEBOUNCE_MS = 500;
/** Coarser than any local file system's timestamps (ext4's are a kernel tick; FAT's are 2 s). */
const RACY_WINDOW_MS = 2000;
const MANIFEST_FILE = /\.(ya?ml|json)$/i;

/**
 * Services and endpoints from YAML/JSON manifest files, kept up to date by watching them.
 *
 * Every rescan re-reads only files whose stat changed, rebuilds the merged view of all files and
 * delivers only what differs from what was delivered before, so an edit to one document never
 * re-delivers its unchanged neighbours. A document that fails to parse or validate is rejected
 * (one error line, and onReject) and the object's last good state stays in force.
 */
export class ManifestSource implements ServiceSource {
  readonly kind = 'manifests';
  readonly #roots: readonly string[];
  readonly #debounceMs: number;
  readonly #rescanIntervalMs: number;
  readonly #onReject: ((rejection: ManifestRejection) => void) | undefined;
  readonly #proxyName: string | undefined;
  readonly #nodeName: string;
  readonly #nodeLabels: Readonly<Record<string, string>> | undefined;

  #handler: ServiceSourceHandler | undefined;
  #synced = false;
  #closed = false;
  #files = new Map<string, FileState>();
  #services = new Map<ServiceKey, ServiceSpec>();
  #slices = new Map<string, EndpointSliceSpec>();
  /** This node as last delivered. */
  #node: NodeSpec | undefined;
  /** `objectKey\nlosing file` of the cross-file duplicates already warned about. */
  #conflicts = new Set<string>();
  readonly #watchers = new Map<string, WatchedDir & { readonly watcher: fs.FSWatcher }>();
  readonly #watchFailures = new Set<string>();
  readonly #unlistable = new Set<string>();
  /** Files are parsed off the event loop, within size, nesting, time and memory limits (see ManifestParseThread). */
  readonly #parser = new ManifestParseThread();

  #debounceTimer: NodeJS.Timeout | undefined;
  #firstRequestAt: number | undefined;
  #interval: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #again = false;

  constructor(options: ManifestSourceOptions) {
    const problems: string[] = [];
    if (!Array.isArray(options.paths) || options.paths.length === 0) problems.push('paths: give at least one manifest file or directory');
    else if (options.paths.some((p) => typeof p !== 'string' || p === '')) problems.push('paths: every path must be a non-empty string');
    const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    if (!Number.isFinite(debounceMs) || debounceMs < 0) problems.push(`debounceMs: must be a number >= 0, got ${debounceMs}`);
    const rescanIntervalMs = options.rescanIntervalMs ?? DEFAULT_RESCAN_INTERVAL_MS;
    if (!Number.isFinite(rescanIntervalMs) || rescanIntervalMs < 0) problems.push(`rescanIntervalMs: must be a number >= 0, got ${rescanIntervalMs}`);
    if (options.nodeLabels !== undefined && (typeof options.nodeLabels !== 'object' || Object.values(options.nodeLabels).some((v) => typeof v !== 'string'))) {
      problems.push('nodeLabels: must map label keys to string values');
    }
    if (problems.length > 0) throw new InvalidConfigError(problems);
    this.#roots = [...new Set(options.paths.map((p) => path.resolve(p)))];
    this.#debounceMs = debounceMs;
    this.#rescanIntervalMs = rescanIntervalMs;
    this.#onReject = options.onReject;
    this.#proxyName = options.serviceProxyName || undefined;
    this.#nodeName = options.nodeName ?? '';
    this.#nodeLabels = options.nodeLabels && Object.keys(options.nodeLabels).length > 0 ? { ...options.nodeLabels } : undefined;
  }

  /**
   * Fails with ManifestError when a path does not exist. Otherwise delivers every object in the
   * files, calls onSynced, and from then on delivers changes until closed.
   */
  async start(handler: ServiceSourceHandler): Promise<void> {
    if (this.#closed) throw new ClosedError('manifest source');
    if (this.#handler) throw new ProxyError('manifest source already started');
    for (const root of this.#roots) await checkRoot(root);
    this.#handler = handler;

    // Watchers are set up by the scan before it reads any file, so an edit made while the
    // initial load runs is caught by the rescan that follows it.
    let release!: () => void;
    this.#scanning = new Promise<void>((resolve) => (release = resolve));
    try {
      await this.#scan();
      if (this.#closed) return;
      log.info('loaded manifests', { paths: this.#roots.join(','), files: this.#files.size, services: this.#services.size, endpointSlices: this.#slices.size });
      this.#synced = true;
      handler.onSynced();
    } catch (err) {
      this.destroy();
      throw err;
    } finally {
      this.#scanning = undefined;
      release();
    }
    if (this.#rescanIntervalMs > 0) this.#interval = setInterval(() => void this.#runScans(), this.#rescanIntervalMs);
    if (this.#again) void this.#runScans();
  }

  /** Stops watching; resolves once a rescan in progress has finished (it delivers nothing more). */
  async close(): Promise<void> {
    this.destroy();
    await this.#scanning?.catch(() => {});
  }

  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#parser.close();
    clearTimeout(this.#debounceTimer);
    clearInterval(this.#interval);
    this.#debounceTimer = undefined;
    this.#interval = undefined;
    for (const { watcher } of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
  }

  /** Debounced: editors save with several events (write temp, rename, chmod) in a burst. */
  #requestScan(): void {
    if (this.#closed) return;
    const now = Date.now();
    this.#firstRequestAt ??= now;
    clearTimeout(this.#debounceTimer);
    const wait = Math.max(0, Math.min(this.#debounceMs, this.#firstRequestAt + Math.max(this.#debounceMs, MAX_DEBOUNCE_MS) - now));
    this.#debounceTimer = setTimeout(() => {
      this.#debounceTimer = undefined;
      this.#firstRequestAt = undefined;
      void this.#runScans();
    }, wait);
  }

  /** Runs one scan at a time; a request during a scan runs one more after it. Never rejects. */
  async #runScans(): Promise<void> {
    if (this.#closed) return;
    if (this.#scanning) {
      this.#again = true;
      return;
    }
    const loop = async (): Promise<void> => {
      do {
        this.#again = false;
        try {
          await this.#scan();
        } catch (err) {
          log.error('manifest rescan failed', { error: (err as Error).message });
        }
      } while (this.#again && !this.#closed);
    };
    this.#scanning = loop();
    await this.#scanning;
    this.#scanning = undefined;
  }

  async #scan(): Promise<void> {
    const listing = await this.#list();
    if (this.#closed) return;
    this.#syncWatchers(listing.dirs);
    const next = new Map<string, FileState>();
    for (const file of listing.files) {
      const state = await this.#load(file, this.#files.get(file));
      if (this.#closed) return;
      if (state) next.set(file, state);
    }
    for (const [file, state] of this.#files) {
      if (next.has(file)) continue;
      if (listing.unlisted.some((dir) => file.startsWith(dir + path.sep))) next.set(file, state);
      else log.info('manifest file removed', { file });
    }
    this.#files = next;
    this.#publish();
  }

  /** The manifest files under the roots now, and the directories to watch for them. */
  async #list(): Promise<Listing> {
    const files = new Set<string>();
    const dirs = new Map<string, WatchedDir>();
    const unlisted: string[] = [];
    const visited = new Set<string>();
    for (const root of this.#roots) {
      let st: fs.Stats | undefined;
      try {
        st = await fsp.stat(root);
      } catch (err) {
        if (isGone(err)) continue;
      }
      if (st?.isDirectory()) {
        await this.#walk(root, st, files, dirs, unlisted, visited);
      } else if (!st || st.isFile()) {
        // A root that exists but cannot be stat'ed (EACCES, ELOOP) is listed so that #load keeps
        // its last good objects and reports it, rather than treating it as deleted.
        files.add(root);
        const parent = path.dirname(root);
        const parentStat = await statOrUndefined(parent);
        // A symlinked file (a mounted ConfigMap) changes when a sibling link (`..data`) is
        // swapped, an event that does not carry the file's name: watch every event then.
        const link = (await fsp.lstat(root).catch(() => undefined))?.isSymbolicLink() ?? false;
        if (parentStat) addWatchedDir(dirs, parent, parentStat.ino, link ? null : path.basename(root));
      }
    }
    return { files: [...files].sort(), dirs, unlisted };
  }

  async #walk(dir: string, st: fs.Stats, files: Set<string>, dirs: Map<string, WatchedDir>, unlisted: string[], visited: Set<string>): Promise<void> {
    // Symlinked directories can form loops.
    const id = `${st.dev}:${st.ino}`;
    if (visited.has(id)) return;
    visited.add(id);
    addWatchedDir(dirs, dir, st.ino, null);
    let entries: fs.Dirent[];
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
      this.#unlistable.delete(dir);
    } catch (err) {
      if (isGone(err)) return;
      unlisted.push(dir);
      if (!this.#unlistable.has(dir)) log.error('cannot list manifest directory', { dir, error: (err as Error).message });
      this.#unlistable.add(dir);
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const p = path.join(dir, entry.name);
      if (entry.isDirectory() || entry.isSymbolicLink()) {
        let target: fs.Stats | undefined;
        try {
          target = await fsp.stat(p);
        } catch (err) {
          // A dangling link is no file; a looping or forbidden one may be a manifest gone bad.
          if (!isGone(err) && MANIFEST_FILE.test(entry.name)) files.add(p);
          continue;
        }
        if (target.isDirectory()) await this.#walk(p, target, files, dirs, unlisted, visited);
        else if (target.isFile() && MANIFEST_FILE.test(entry.name)) files.add(p);
      } else if (entry.isFile() && MANIFEST_FILE.test(entry.name)) {
        files.add(p);
      }
    }
  }

  /** Re-reads a file only when its stat changed; returns undefined when it no longer exists. */
  async #load(file: string, prev: FileState | undefined): Promise<FileState | undefined> {
    let st: fs.BigIntStats;
    try {
      st = await fsp.stat(file, { bigint: true });
    } catch (err) {
      if (isGone(err)) return undefined;
      return this.#unreadable(file, prev, `error:${(err as NodeJS.ErrnoException).code ?? ''}`, err);
    }
    if (!st.isFile()) return undefined;
    const signature = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    if (prev && prev.signature === signature && !prev.racy) return prev;
    const racy = Date.now() - Number(st.mtimeMs) < RACY_WINDOW_MS;
    const tooLarge = manifestSizeExceeded(Number(st.size));
    if (tooLarge) return this.#unreadable(file, prev, signature, new ManifestError(file, tooLarge));
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if (isGone(err)) return undefined;
      return this.#unreadable(file, prev, signature, err);
    }
    const hash = createHash('sha256').update(text).digest('hex');
    if (prev && prev.hash === hash) return { ...prev, signature, racy };
    let entries: ManifestEntry[];
    try {
      entries = await this.#parser.parse(text, file, this.#proxyName === undefined ? {} : { serviceProxyName: this.#proxyName });
    } catch (err) {
      entries = [{ document: 1, type: 'rejected', object: undefined, field: '', reason: (err as Error).message }];
    }
    if (this.#closed) return prev;
    return { signature, hash, racy, objects: this.#parse(file, entries, prev) };
  }

  /** A file that cannot be read keeps its last good objects; reported once per change of its stat. */
  #unreadable(file: string, prev: FileState | undefined, signature: string, err: unknown): FileState {
    if (prev?.signature !== signature) {
      this.#reject({ file, document: 0, object: 'unknown', field: '', reason: `cannot read file: ${(err as Error).message}` });
    }
    return { signature, hash: undefined, racy: false, objects: prev?.objects ?? new Map() };
  }

  /** The objects of one file's new entries, with the last good state of each rejected object kept. */
  #parse(file: string, entries: readonly ManifestEntry[], prev: FileState | undefined): Map<string, FileObject> {
    const objects = new Map<string, FileObject>();
    const add = (key: string, obj: FileObject, document: number): void => {
      if (objects.has(key)) log.warn('duplicate manifest object', { file, document, object: key, kept: 'first' });
      else objects.set(key, obj);
    };
    const keep = new Set<string>();
    let keepAll = false;
    for (const entry of entries) {
      if ('unknownFields' in entry && entry.unknownFields) log.warn('unknown fields in manifest object', { file, document: entry.document, ...(entry.item === undefined ? {} : { item: entry.item }), object: entry.object, fields: entry.unknownFields.join(',') });
      switch (entry.type) {
        case 'service':
          add(entry.object, { type: 'service', service: entry.service }, entry.document);
          break;
        case 'slices':
          add(entry.object, { type: 'slices', slices: entry.slices }, entry.document);
          break;
        case 'node':
          add(entry.object, { type: 'node', node: entry.node }, entry.document);
          break;
        case 'ignored': {
          const fields = { file, document: entry.document, item: entry.item, object: entry.object ?? 'unknown', apiVersion: entry.apiVersion, kind: entry.kind };
          // A Service skipped for its labels is news to whoever wrote it; an unrelated kind is not.
          if (entry.reason !== undefined) log.info('ignored manifest object', { ...fields, reason: entry.reason });
          else log.debug('ignored manifest object', fields);
          break;
        }
        case 'rejected': {
          const rejection: ManifestRejection = { file, document: entry.document, ...(entry.item === undefined ? {} : { item: entry.item }), object: entry.object ?? 'unknown', field: entry.field, reason: entry.reason };
          this.#reject(rejection);
          // Without an identity, any object of the old text may be the one that broke.
          if (entry.object === undefined) keepAll = true;
          else keep.add(entry.object);
          break;
        }
      }
    }
    for (const [key, obj] of prev?.objects ?? []) {
      if (!objects.has(key) && (keepAll || keep.has(key))) objects.set(key, obj);
    }
    return objects;
  }

  #reject(rejection: ManifestRejection): void {
    log.error('rejected manifest object', { ...rejection });
    try {
      this.#onReject?.(rejection);
    } catch (err) {
      log.error('manifest onReject callback failed', { error: (err as Error).message });
    }
  }

  /** Merges all files (the first file in path order wins a duplicate) and delivers the differences. */
  #publish(): void {
    const winners = new Map<string, { file: string; obj: FileObject }>();
    const conflicts = new Set<string>();
    for (const file of [...this.#files.keys()].sort()) {
      for (const [key, obj] of this.#files.get(file)!.objects) {
        const winner = winners.get(key);
        if (!winner) {
          winners.set(key, { file, obj });
          continue;
        }
        const conflict = `${key}\n${file}`;
        if (!this.#conflicts.has(conflict)) log.warn('duplicate manifest object', { object: key, file, kept: winner.file });
        conflicts.add(conflict);
      }
    }
    this.#conflicts = conflicts;

    const services = new Map<ServiceKey, ServiceSpec>();
    const slices = new Map<string, EndpointSliceSpec>();
    let manifestNode: NodeSpec | undefined;
    for (const { obj } of winners.values()) {
      if (obj.type === 'service') services.set(keyOfService(obj.service), obj.service);
      else if (obj.type === 'slices') for (const slice of obj.slices) slices.set(keyOfSlice(slice), slice);
      else if (obj.node.name === this.#nodeName) manifestNode = obj.node;
    }
    const handler = this.#handler!;
    const servicesBefore = this.#services;
    const slicesBefore = this.#slices;
    this.#services = services;
    this.#slices = slices;
    let changes = 0;
    for (const key of unionSorted(servicesBefore, services)) {
      const previous = servicesBefore.get(key);
      const current = services.get(key);
      if (isDeepStrictEqual(previous, current)) continue;
      changes++;
      this.#deliver(() => handler.onServiceChange(key, previous, current));
    }
    for (const key of unionSorted(slicesBefore, slices)) {
      const previous = slicesBefore.get(key);
      const current = slices.get(key);
      if (isDeepStrictEqual(previous, current)) continue;
      changes++;
      this.#deliver(() => handler.onEndpointSliceChange(key, previous, current));
    }
    const node = this.#thisNode(manifestNode);
    if (!isDeepStrictEqual(node, this.#node)) {
      this.#node = node;
      changes++;
      this.#deliver(() => handler.onNodeChange?.(node));
    }
    if (changes > 0 && this.#synced) log.debug('delivered manifest changes', { changes });
  }

  /** This node from its manifest and --node-labels; undefined when neither says anything. */
  #thisNode(manifest: NodeSpec | undefined): NodeSpec | undefined {
    if (this.#nodeLabels === undefined) return manifest;
    return {
      name: this.#nodeName,
      labels: { ...manifest?.labels, ...this.#nodeLabels },
      deleting: manifest?.deleting ?? false,
      taints: manifest?.taints ?? [],
    };
  }

  /** Before onSynced a handler failure fails start(); afterwards it is logged and the next change still goes out. */
  #deliver(call: () => void): void {
    if (!this.#synced) return call();
    try {
      call();
    } catch (err) {
      log.error('manifest change handler failed', { error: (err as Error).message });
    }
  }

  #syncWatchers(dirs: ReadonlyMap<string, WatchedDir>): void {
    for (const [dir, watched] of this.#watchers) {
      const want = dirs.get(dir);
      // A different inode is a directory deleted and made again: the old watch sees nothing.
      if (want && want.ino === watched.ino) continue;
      watched.watcher.close();
      this.#watchers.delete(dir);
    }
    for (const [dir, want] of dirs) {
      const have = this.#watchers.get(dir);
      if (have) {
        have.names = want.names;
        continue;
      }
      try {
        const watcher = fs.watch(dir, { persistent: true }, (_event, filename) => this.#onWatchEvent(dir, filename));
        watcher.on('error', (err) => this.#onWatchError(dir, watcher, err));
        this.#watchers.set(dir, { ...want, watcher });
        this.#watchFailures.delete(dir);
      } catch (err) {
        // Out of inotify watches, say: the periodic rescan still finds changes, only later.
        if (!this.#watchFailures.has(dir)) log.warn('cannot watch manifest directory', { dir, error: (err as Error).message });
        this.#watchFailures.add(dir);
      }
    }
  }

  #onWatchEvent(dir: string, filename: string | Buffer | null): void {
    try {
      const watched = this.#watchers.get(dir);
      if (watched?.names && filename !== null && !watched.names.has(filename.toString())) return;
      this.#requestScan();
    } catch (err) {
      log.error('manifest watch event failed', { dir, error: (err as Error).message });
    }
  }

  #onWatchError(dir: string, watcher: fs.FSWatcher, err: Error): void {
    try {
      log.debug('manifest watch failed', { dir, error: err.message });
      watcher.close();
      if (this.#watchers.get(dir)?.watcher === watcher) this.#watchers.delete(dir);
      this.#requestScan();
    } catch (e) {
      log.error('manifest watch event failed', { dir, error: (e as Error).message });
    }
  }
}

async function checkRoot(root: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = await fsp.stat(root);
  } catch (err) {
    if (isGone(err)) throw new ManifestError(root, `manifest path ${root} does not exist`, { cause: err });
    throw new ManifestError(root, `cannot access manifest path ${root}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isFile() && !st.isDirectory()) throw new ManifestError(root, `manifest path ${root} is neither a file nor a directory`);
}

function addWatchedDir(dirs: Map<string, WatchedDir>, dir: string, ino: number, name: string | null): void {
  const have = dirs.get(dir);
  if (!have) dirs.set(dir, { ino, names: name === null ? null : new Set([name]) });
  else if (name === null) have.names = null;
  else have.names?.add(name);
}

async function statOrUndefined(p: string): Promise<fs.Stats | undefined> {
  try {
    return await fsp.stat(p);
  } catch {
    return undefined;
  }
}

function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function unionSorted<K extends string>(a: ReadonlyMap<K, unknown>, b: ReadonlyMap<K, unknown>): K[] {
  return [...new Set([...a.keys(), ...b.keys()])].sort();
}
