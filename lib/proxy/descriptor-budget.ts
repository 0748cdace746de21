import { readFileSync } from 'node:fs';

/** The open-file limit assumed where /proc/self/limits cannot be read (not Linux): a common default. */
export const FALLBACK_NOFILE = 1024;
/** Descriptors kept out of the data path's budget at the least, whatever the limit. */
export const MIN_HEADROOM = 128;
/** ...or this share of the limit, when that is more. */
const HEADROOM_SHARE = 0.1;

/** Errors that say this host is out of a local resource, not that an endpoint failed. */
const LOCAL_RESOURCE_ERRORS: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

/** Whether an error code means the host ran out of descriptors, buffers or memory. */
export function isLocalResourceError(code: string | undefined): boolean {
  return code !== undefined && LOCAL_RESOURCE_ERRORS.has(code);
}

/**
 * The soft RLIMIT_NOFILE of this process, from /proc/self/limits (Node has no getrlimit), or
 * undefined where that file does not exist or says "unlimited".
 */
export function readOpenFileLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (m === null) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * How many descriptors this process's data path may hold at once: connections, their upstream
 * sockets, UDP session sockets. The rest of the open-file limit (10 %, or 128, whichever is more)
 * is headroom for listeners, the health and metrics servers, the API source and log files, so
 * that a flood of clients cannot starve them. Per process: with --workers every worker has one.
 *
 * A counter, not a measurement: acquire() before opening, release() once closed, O(1) each.
 * Refusing at the budget turns EMFILE (which the kernel reports at random places, some of them
 * outside the data path) into a counted, immediate refusal of the new connection.
 */
export class DescriptorBudget {
  /** The open-file limit the budget was derived from. */
  readonly limit: number;
  /** Whether the limit was read from the system (false: FALLBACK_NOFILE or a value given). */
  readonly measured: boolean;
  readonly headroom: number;
  /** Most descriptors the data path may hold. */
  readonly size: number;
  #used = 0;

  constructor(limit?: number) {
    const read = limit ?? readOpenFileLimit();
    this.measured = limit === undefined && read !== undefined;
    this.limit = read ?? FALLBACK_NOFILE;
    this.headroom = Math.max(MIN_HEADROOM, Math.ceil(this.limit * HEADROOM_SHARE));
    this.size = Math.max(0, this.limit - this.headroom);
  }

  /** Descriptors held now. */
  get used(): number {
    return this.#used;
  }

  /** Takes n descriptors if they fit; false (nothing taken) when the budget is spent. */
  tryAcquire(n: number): boolean {
    if (this.#used + n > this.size) return false;
    this.#used += n;
    return true;
  }

  release(n: number): void {
    this.#used = Math.max(0, this.#used - n);
  }

  /** The default --udp-max-sessions: a session holds two descriptors (upstream and reply socket). */
  udpSessionCap(): number {
    return Math.max(1, Math.floor(this.size / 2));
  }
}
