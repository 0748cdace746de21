import fs from 'node:fs';
import path from 'node:path';
import { logger } from '../log.js';
import { isManifestName } from './manifest-listing.js';
import type { WatchedDir } from './manifest-listing.js';

const log = logger('manifests');

/**
 * One fs.watch per manifest directory, kept in step with the latest listing; every event that
 * may concern a manifest calls `onEvent`, with the manifest file it names when it names one (a
 * file of a directory read whole, or a file given itself). Events are hints only: the caller
 * rescans, and its periodic rescan catches what a watch missed.
 */
export class ManifestDirectoryWatcher {
  readonly #onEvent: (file: string | undefined) => void;
  readonly #watchers = new Map<string, WatchedDir & { readonly watcher: fs.FSWatcher }>();
  readonly #failures = new Set<string>();
  #closed = false;

  constructor(onEvent: (file: string | undefined) => void) {
    this.#onEvent = onEvent;
  }

  /** Watches exactly these directories (and, where given, only these names in them). */
  sync(dirs: ReadonlyMap<string, WatchedDir>): void {
    if (this.#closed) return;
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
        have.listed = want.listed;
        continue;
      }
      try {
        const watcher = fs.watch(dir, { persistent: true }, (_event, filename) => this.#onWatchEvent(dir, filename));
        watcher.on('error', (err) => this.#onWatchError(dir, watcher, err));
        this.#watchers.set(dir, { ...want, watcher });
        this.#failures.delete(dir);
      } catch (err) {
        // Out of inotify watches, say: the periodic rescan still finds changes, only later.
        if (!this.#failures.has(dir)) log.warn('cannot watch manifest directory', { dir, error: (err as Error).message });
        this.#failures.add(dir);
      }
    }
  }

  close(): void {
    this.#closed = true;
    for (const { watcher } of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
  }

  #onWatchEvent(dir: string, filename: string | Buffer | null): void {
    try {
      const watched = this.#watchers.get(dir);
      const name = filename?.toString();
      if (watched?.names && name !== undefined && !watched.names.has(name)) return;
      const named = name !== undefined && watched !== undefined && (watched.names !== null || (watched.listed && isManifestName(name)));
      this.#onEvent(named ? path.join(dir, name) : undefined);
    } catch (err) {
      log.error('manifest watch event failed', { dir, error: (err as Error).message });
    }
  }

  #onWatchError(dir: string, watcher: fs.FSWatcher, err: Error): void {
    try {
      log.debug('manifest watch failed', { dir, error: err.message });
      watcher.close();
      if (this.#watchers.get(dir)?.watcher === watcher) this.#watchers.delete(dir);
      this.#onEvent(undefined);
    } catch (e) {
      log.error('manifest watch event failed', { dir, error: (e as Error).message });
    }
  }
}
