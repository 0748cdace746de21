import path from 'node:path';
import { ClosedError, InvalidConfigError, ProxyError } from '../errors.js';
import { logger } from '../log.js';
import type { NodeSpec } from '../model/node.js';
import { ManifestDelivery } from './manifest-delivery.js';
import { ManifestDirectoryWatcher } from './manifest-directory-watcher.js';
import { ManifestFileCache } from './manifest-file-cache.js';
import type { ManifestRejection } from './manifest-file-cache.js';
import { checkManifestRoot, listManifests } from './manifest-listing.js';
import { ManifestMerge } from './manifest-merge.js';
import { mergeChanges } from './manifest-merge-changes.js';
import { warmUpManifestParser } from './manifest-parse-warm-up.js';
import { ManifestScanSchedule } from './manifest-scan-schedule.js';
import type { ManifestFileChange } from './manifest-merge.js';
import type { ServiceSource, ServiceSourceHandler } from './service-source.js';

export type { ManifestRejection } from './manifest-file-cache.js';

const log = logger('manifests');

export interface ManifestSourceOptions {
  /** Files and directories; directories are read recursively for *.yaml, *.yml and *.json. */
  readonly paths: readonly string[];
  /** Quiet time after a file-system event before rescanning, and applying what does not only add (default 10 ms). */
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

/**
 * The events of one save (write a temporary file, rename it, chmod; or a ConfigMap's link swap)
 * come within a millisecond of each other, so 10 ms of quiet still makes one rescan of them. A
 * file caught half-written is not lost either way: its last good state stays, and the writer's
 * next event brings another rescan.
 */
const DEFAULT_DEBOUNCE_MS = 10;
const DEFAULT_RESCAN_INTERVAL_MS = 2000;
/** Changes that take something away wait at most this long for a reading that confirms them. */
const MAX_HOLD_MS = 500;
/**
 * Parse threads of the initial load. A second one halves the parse's wait only on a machine with
 * two idle cores; each costs its start, a cold compile and the copy of its results, and with the
 * cores busy (10,000 Services in 10 files, 2 cores) two took 5.2-5.6 s of CPU to listening against
 * one's 4.4-4.6 s, and were not sooner.
 */
const INITIAL_PARSE_THREADS = 1;

/**
 * Services and endpoints from YAML/JSON manifest files, kept up to date by watching them.
 *
 * Every rescan lists the files (ManifestListing), re-reads only those whose stat changed
 * (ManifestFileCache), merges what changed (ManifestMerge) and delivers only what differs from
 * what was delivered before, so an edit to one document never re-delivers its unchanged
 * neighbours. A document that fails to parse or validate is rejected (one error line, and
 * onReject) and the object's last good state stays in force.
 *
 * The rescan waits for debounceMs of quiet, so that a file is not read while it is written. What
 * only adds need not wait: the files an event names are read at once, and new Services and
 * EndpointSlices, or ones that only gained ports or endpoints, are delivered then (a new Service
 * thus listens about 10 ms sooner). Anything else from that read, a removal or a change, waits
 * for the rescan, and so does a document that fails (it is reported only if it still fails then):
 * a file caught truncated never takes anything away.
 */
export class ManifestSource implements ServiceSource {
  readonly kind = 'manifests';
  readonly #roots: readonly string[];
  readonly #nodeName: string;
  readonly #nodeLabels: Readonly<Record<string, string>> | undefined;

  #delivery: ManifestDelivery | undefined;
  /** The files' objects have been delivered once. */
  #published = false;
  /** When the changes held for a confirming reading were first held (see #scan). */
  #holdingSince: number | undefined;
  readonly #debounceMs: number;
  #closed = false;
  readonly #files: ManifestFileCache;
  readonly #merge: ManifestMerge;
  readonly #schedule: ManifestScanSchedule;
  readonly #watcher = new ManifestDirectoryWatcher((file) => this.#schedule.event(file, this.#published));
  /** Directories already reported as unlistable. */
  readonly #unlistable = new Set<string>();

  /** Ends the block of readings that start() lifts (see preload()). */
  #unblock: (() => void) | undefined;
  /** The first reading of the files, begun by preload() and finished by start(). */
  #preloaded: { readonly checked: Promise<void>; readonly read: Promise<ManifestFileChange[] | undefined> } | undefined;

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
    this.#schedule = new ManifestScanSchedule({ debounceMs, rescanIntervalMs, rescan: () => this.#scan(), readNamed: (files) => this.#readNamed(files) });
    this.#files = new ManifestFileCache({ serviceProxyName: options.serviceProxyName || undefined, onReject: options.onReject });
    this.#nodeName = options.nodeName ?? '';
    this.#merge = new ManifestMerge(this.#nodeName);
    this.#nodeLabels = options.nodeLabels && Object.keys(options.nodeLabels).length > 0 ? { ...options.nodeLabels } : undefined;
  }

  /**
   * Begins reading and parsing the files now, so that this overlaps whatever the process does
   * before start() (loading the rest of the program, starting workers). Nothing is delivered
   * before start(), which waits for this reading and delivers the state it found: the first sync
   * still sees every file. An edit meanwhile is read again once start() has delivered.
   */
  preload(): void {
    if (this.#closed || this.#delivery || this.#preloaded) return;
    const checked = this.#checkRoots();
    const read = checked.then(() => this.#readFiles());
    // start() reports either failure; until then neither is unhandled.
    read.catch(() => {});
    this.#preloaded = { checked, read };
    // Events during the reading ask for one more scan after start().
    this.#unblock = this.#schedule.block();
  }

  /**
   * Fails with ManifestError when a path does not exist. Otherwise delivers every object in the
   * files, calls onSynced, and from then on delivers changes until closed.
   */
  async start(handler: ServiceSourceHandler): Promise<void> {
    if (this.#closed) throw new ClosedError('manifest source');
    if (this.#delivery) throw new ProxyError('manifest source already started');
    const preloaded = this.#preloaded;
    this.#preloaded = undefined;
    try {
      await (preloaded?.checked ?? this.#checkRoots());
    } catch (err) {
      // As without preload(): nothing was read, and start() may be called again.
      this.#unblock?.();
      this.#unblock = undefined;
      throw err;
    }
    const delivery = (this.#delivery = new ManifestDelivery(handler));

    // Watchers are set up by the scan before it reads any file, so an edit made while the
    // initial load runs is caught by the rescan that follows it.
    const unblock = this.#unblock ?? this.#schedule.block();
    this.#unblock = undefined;
    // While the files parse on their threads, so that the first edit does not pay for it.
    warmUpManifestParser();
    try {
      const changes = await (preloaded?.read ?? this.#readFiles());
      if (this.#closed || changes === undefined) return;
      this.#publish(undefined, false);
      this.#published = true;
      log.info('loaded manifests', { paths: this.#roots.join(','), files: this.#files.size, services: this.#merge.services.size, endpointSlices: this.#merge.slices.size });
      delivery.synced();
    } catch (err) {
      this.destroy();
      throw err;
    } finally {
      unblock();
    }
    this.#schedule.start();
  }

  /** Stops watching; resolves once a rescan in progress has finished (it delivers nothing more). */
  async close(): Promise<void> {
    this.destroy();
    await Promise.all([this.#schedule.running, this.#preloaded?.read.catch(() => {})]);
  }

  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#files.close();
    this.#schedule.close();
    this.#watcher.close();
  }

  async #checkRoots(): Promise<void> {
    for (const root of this.#roots) await checkManifestRoot(root);
  }

  /** Lists and reads the files (watching their directories first); undefined once closed. */
  async #readFiles(): Promise<ManifestFileChange[] | undefined> {
    const listing = await listManifests(this.#roots, this.#unlistable);
    if (this.#closed) return undefined;
    this.#watcher.sync(listing.dirs);
    // Before the first delivery the proxy waits for nothing else: two files are parsed at once.
    return this.#files.refresh(listing, this.#published ? 1 : INITIAL_PARSE_THREADS);
  }

  /** The named files, for what they add: that alone is delivered (see ManifestDelivery). */
  async #readNamed(files: string[]): Promise<void> {
    if (!this.#published) return;
    const changes = await this.#files.readNamed(files);
    if (changes === undefined || changes.length === 0) return;
    this.#publish(changes, true);
    // What it held is confirmed by the rescan once the files are quiet (see #scan).
    this.#holdSince(Date.now());
  }

  /**
   * A file read just after a writer truncated it (before it writes it again) looks emptied, and no
   * watch event need tell: inotify merges the truncation's with an unread one. So a reading
   * delivers what only adds, and holds what takes something away or changes it until a reading at
   * least a quiet period later finds the files as they were (or it has been held MAX_HOLD_MS).
   */
  async #scan(): Promise<void> {
    if (!this.#published) return;
    const changes = await this.#readFiles();
    if (changes === undefined) return;
    const delivery = this.#delivery!;
    // The periodic rescan mostly finds nothing new: merging and comparing 10,000 objects for that
    // cost about 25 ms of CPU every rescanIntervalMs.
    if (changes.length === 0 && !delivery.holding) return;
    const now = Date.now();
    if (!delivery.holding) this.#holdingSince = undefined;
    const held = this.#holdingSince === undefined ? 0 : now - this.#holdingSince;
    const confirmed = changes.length === 0 && this.#holdingSince !== undefined && held >= this.#debounceMs;
    if (confirmed || held >= MAX_HOLD_MS) {
      this.#holdingSince = undefined;
      this.#publish(changes, false);
      return;
    }
    if (changes.length > 0) this.#publish(changes, true);
    if (this.#holdSince(now)) this.#schedule.event(undefined, false);
  }

  /** Notes when holding began; whether something is held. */
  #holdSince(now: number): boolean {
    if (!this.#delivery!.holding) {
      this.#holdingSince = undefined;
      return false;
    }
    this.#holdingSince ??= now;
    return true;
  }

  /**
   * Merges the files (the first file in path order wins a duplicate; only the changed files when
   * given and possible) and delivers the differences, or only the additions.
   */
  #publish(changes: readonly ManifestFileChange[] | undefined, additionsOnly: boolean): void {
    const merge = this.#merge;
    const { services, slices } = mergeChanges(merge, changes, () => this.#files.objectsByFile());
    const state = { services, slices, allServices: merge.services, allSlices: merge.slices, node: this.#thisNode(merge.node) };
    if (additionsOnly) this.#delivery!.deliverAdditions(state);
    else this.#delivery!.deliverAll(state);
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
}
