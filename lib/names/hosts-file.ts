import { chmodSync, chownSync, closeSync, ftruncateSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { HostsFileError } from '../errors.js';
import { logger } from '../log.js';
import { renderHostsBlock, replaceHostsBlock } from './hosts-block.js';
import type { HostsEntry } from './hosts-block.js';

const log = logger('hosts-file');

/** Attempts to update the file before giving up when something else keeps changing it. */
const MAX_ATTEMPTS = 5;
/** How long changes are gathered into one write: a burst of Service changes writes once. */
const DEFAULT_DEBOUNCE_MS = 100;
/** After a failed write, when to try again even if no Service changes. */
const RETRY_MS = 10_000;
/** Errors creating the temp file that mean "not in this directory": write the file in place instead. */
const NO_TEMP_FILE = new Set(['EACCES', 'EPERM', 'EROFS']);
/**
 * Errors replacing the file by rename that mean "it cannot be replaced, only written": EBUSY is
 * the usual one, for /etc/hosts in a container, which is a file bind-mounted over the image's
 * (renaming onto a mount point is refused); EXDEV and EPERM for kin of it.
 */
const NO_RENAME = new Set(['EBUSY', 'EXDEV', 'EPERM']);

export interface EditHooks {
  /**
   * Called after the file was read and before it is replaced, with the attempt number: the moment
   * another program's edit would be lost without the check. Tests make that edit here.
   */
  readonly beforeCommit?: (file: string, attempt: number) => void;
}

/**
 * Replaces this project's block in a hosts file (undefined: removes it), leaving every other byte
 * as it was. Read, edit, write a temp file beside it, check that the file still reads as it did,
 * rename the temp file over it; when the check fails, another program edited the file meanwhile:
 * start again from its new text, so that edit is kept. The check and the rename follow each other
 * with no await between, so nothing else in this process runs in that window; another program can
 * still write in the microseconds between them, which no lock could prevent (/etc/hosts has no
 * locking convention). The calls are synchronous for that reason and because destroy() must be:
 * the file is a few kilobytes on a local disk. Returns whether the file changed.
 */
export function editHostsFile(file: string, block: string | undefined, hooks: EditHooks = {}): boolean {
  // A symlinked hosts file is edited where it points, and stays a symlink.
  const target = existing(file) ? realpathSync(file) : file;
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const before = readText(target);
    const next = replaceHostsBlock(before ?? '', block);
    if (next === (before ?? '')) return false;
    hooks.beforeCommit?.(target, attempt);
    if (commit(target, before, next)) return true;
  }
  throw new HostsFileError(`hosts file ${file}: another program changed it during each of ${MAX_ATTEMPTS} attempts to update it`, { file });
}

/** Removes this project's block from a hosts file (--cleanup); a missing file has none. */
export function removeHostsBlock(file: string): boolean {
  try {
    return editHostsFile(file, undefined);
  } catch (err) {
    throw asHostsFileError(file, err);
  }
}

/** Writes `next` if the file still reads `before`; false when it does not. */
function commit(target: string, before: string | undefined, next: string): boolean {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.kube-userspace-proxy-${process.pid}.tmp`);
  let staged = false;
  try {
    const st = before === undefined ? undefined : statSync(target);
    writeWhole(tmp, next, 'w');
    // The new file keeps the old one's mode and, when this process may set them, its owners.
    if (st) {
      chmodSync(tmp, st.mode & 0o7777);
      if (process.getuid?.() === 0) chownSync(tmp, st.uid, st.gid);
    }
    staged = true;
  } catch (err) {
    rmSync(tmp, { force: true });
    if (!NO_TEMP_FILE.has(codeOf(err))) throw err;
  }
  if (readText(target) !== before) {
    if (staged) rmSync(tmp, { force: true });
    return false;
  }
  if (staged) {
    try {
      renameSync(tmp, target);
      return true;
    } catch (err) {
      rmSync(tmp, { force: true });
      if (!NO_RENAME.has(codeOf(err))) throw err;
    }
  }
  // In place, as a bind-mounted /etc/hosts must be written: not atomic (a reader at that instant
  // may see a mix of old and new text), but nothing else can update a file that cannot be replaced.
  writeWhole(target, next, before === undefined ? 'w' : 'r+');
  return true;
}

function writeWhole(file: string, text: string, flag: 'w' | 'r+'): void {
  const bytes = Buffer.from(text, 'latin1');
  const fd = openSync(file, flag, 0o644);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off, off);
    ftruncateSync(fd, bytes.length);
  } finally {
    closeSync(fd);
  }
}

/** The file's text, latin1 so that every byte comes back as it was; undefined when it does not exist. */
function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'latin1');
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return undefined;
    throw err;
  }
}

function existing(file: string): boolean {
  try {
    statSync(file);
    return true;
  } catch {
    return false;
  }
}

function codeOf(err: unknown): string {
  return String((err as NodeJS.ErrnoException)?.code ?? '');
}

function asHostsFileError(file: string, err: unknown): HostsFileError {
  if (err instanceof HostsFileError) return err;
  return new HostsFileError(`cannot update hosts file ${file}: ${(err as Error).message}`, { file, cause: err });
}

export interface HostsFileOptions {
  /** The file: /etc/hosts, normally. */
  readonly path: string;
  /** How long changes are gathered into one write. */
  readonly debounceMs?: number;
  readonly hooks?: EditHooks;
}

/**
 * --hosts-file: keeps this project's block in a hosts file equal to the last entries published,
 * writing at most once per debounce interval, and removes the block on close or destroy. A file
 * that cannot be written is one error line (again only when the reason changes); the proxy keeps
 * serving, and the write is tried again at the next change or after RETRY_MS.
 */
export class HostsFile {
  readonly path: string;
  readonly #debounceMs: number;
  readonly #hooks: EditHooks;
  #wanted: string | undefined;
  #entries = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastError: string | undefined;
  #closed = false;
  /** The timer set is the retry after a failure. */
  #retrying = false;

  constructor(options: HostsFileOptions) {
    this.path = options.path;
    this.#debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.#hooks = options.hooks ?? {};
  }

  /** The entries the block should hold; written after the debounce interval. */
  publish(entries: readonly HostsEntry[]): void {
    if (this.#closed) return;
    this.#wanted = renderHostsBlock(entries);
    this.#entries = entries.length;
    if (this.#retrying) {
      // A change need not wait for the retry after a failure.
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#retrying = false;
    }
    this.#schedule(this.#debounceMs);
  }

  /** Why the last write failed, or undefined when it succeeded. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Removes the block. Idempotent. */
  async close(): Promise<void> {
    this.destroy();
  }

  /** Removes the block at once (synchronously: this runs on the way out of the process). Idempotent. */
  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      if (editHostsFile(this.path, undefined, this.#hooks)) log.info('hosts file block removed', { file: this.path });
    } catch (err) {
      log.error('cannot remove hosts file block', { file: this.path, error: asHostsFileError(this.path, err).message });
    }
  }

  #schedule(delayMs: number): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#retrying = false;
      this.#flush();
    }, delayMs);
  }

  #flush(): void {
    if (this.#closed || this.#wanted === undefined) return;
    try {
      // Read even when the block is the one last written: another program may have rewritten the
      // file without it since (a network manager regenerating /etc/hosts); then it is put back.
      if (editHostsFile(this.path, this.#wanted, this.#hooks)) log.info('hosts file updated', { file: this.path, entries: this.#entries });
      this.#lastError = undefined;
    } catch (err) {
      const error = asHostsFileError(this.path, err);
      if (error.message !== this.#lastError) log.error('cannot write hosts file', { file: this.path, code: error.code, error: error.message });
      this.#lastError = error.message;
      this.#schedule(RETRY_MS);
      this.#retrying = true;
    }
  }
}
