import type fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ManifestError } from '../errors.js';
import { logger } from '../log.js';

const log = logger('manifests');

/** A directory whose events can change the manifests. */
export interface WatchedDir {
  readonly ino: number;
  /** The file names whose events matter, or null for every event (a directory being read whole). */
  names: Set<string> | null;
  /** The directory is read whole: a new manifest file in it is one to load. */
  listed: boolean;
}

/** The manifest files under the roots at one moment, and the directories to watch for them. */
export interface ManifestListing {
  /** Every manifest file, absolute, sorted. */
  readonly files: readonly string[];
  readonly dirs: ReadonlyMap<string, WatchedDir>;
  /** Directories that exist but could not be listed: their files keep their last state. */
  readonly unlisted: readonly string[];
}

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

/** A name a listed directory's manifest files have: *.yaml, *.yml or *.json, not hidden. */
export function isManifestName(name: string): boolean {
  return !name.startsWith('.') && MANIFEST_FILE.test(name);
}

/** Fails with ManifestError when a root does not exist or is neither a file nor a directory. */
export async function checkManifestRoot(root: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = await fsp.stat(root);
  } catch (err) {
    if (isGone(err)) throw new ManifestError(root, `manifest path ${root} does not exist`, { cause: err });
    throw new ManifestError(root, `cannot access manifest path ${root}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isFile() && !st.isDirectory()) throw new ManifestError(root, `manifest path ${root} is neither a file nor a directory`);
}

/**
 * Lists the manifest files (*.yaml, *.yml, *.json, not hidden) under the roots, directories
 * recursively. `unlistable` holds the directories already reported as unlistable, so that each
 * is reported once until it can be listed again.
 */
export async function listManifests(roots: readonly string[], unlistable: Set<string>): Promise<ManifestListing> {
  const files = new Set<string>();
  const dirs = new Map<string, WatchedDir>();
  const unlisted: string[] = [];
  const visited = new Set<string>();
  for (const root of roots) {
    let st: fs.Stats | undefined;
    try {
      st = await fsp.stat(root);
    } catch (err) {
      if (isGone(err)) continue;
    }
    if (st?.isDirectory()) {
      await walk(root, st, { files, dirs, unlisted, visited, unlistable });
    } else if (!st || st.isFile()) {
      // A root that exists but cannot be stat'ed (EACCES, ELOOP) is listed so that loading it
      // keeps its last good objects and reports it, rather than treating it as deleted.
      files.add(root);
      const parent = path.dirname(root);
      const parentStat = await fsp.stat(parent).catch(() => undefined);
      // A symlinked file (a mounted ConfigMap) changes when a sibling link (`..data`) is
      // swapped, an event that does not carry the file's name: watch every event then.
      const link = (await fsp.lstat(root).catch(() => undefined))?.isSymbolicLink() ?? false;
      if (parentStat) addWatchedDir(dirs, parent, parentStat.ino, link ? null : path.basename(root), false);
    }
  }
  return { files: [...files].sort(), dirs, unlisted };
}

interface Walk {
  readonly files: Set<string>;
  readonly dirs: Map<string, WatchedDir>;
  readonly unlisted: string[];
  readonly visited: Set<string>;
  readonly unlistable: Set<string>;
}

async function walk(dir: string, st: fs.Stats, w: Walk): Promise<void> {
  // Symlinked directories can form loops.
  const id = `${st.dev}:${st.ino}`;
  if (w.visited.has(id)) return;
  w.visited.add(id);
  addWatchedDir(w.dirs, dir, st.ino, null, true);
  let entries: fs.Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
    w.unlistable.delete(dir);
  } catch (err) {
    if (isGone(err)) return;
    w.unlisted.push(dir);
    if (!w.unlistable.has(dir)) log.error('cannot list manifest directory', { dir, error: (err as Error).message });
    w.unlistable.add(dir);
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
        if (!isGone(err) && MANIFEST_FILE.test(entry.name)) w.files.add(p);
        continue;
      }
      if (target.isDirectory()) await walk(p, target, w);
      else if (target.isFile() && MANIFEST_FILE.test(entry.name)) w.files.add(p);
    } else if (entry.isFile() && MANIFEST_FILE.test(entry.name)) {
      w.files.add(p);
    }
  }
}

function addWatchedDir(dirs: Map<string, WatchedDir>, dir: string, ino: number, name: string | null, listed: boolean): void {
  const have = dirs.get(dir);
  if (!have) dirs.set(dir, { ino, names: name === null ? null : new Set([name]), listed });
  else {
    have.listed ||= listed;
    if (name === null) have.names = null;
    else have.names?.add(name);
  }
}

/** ENOENT or ENOTDIR: the path is not there (any more). */
export function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
