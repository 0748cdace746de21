/** What the table needs of a session. */
export interface TableEntry {
  readonly key: string;
  /** Last datagram in either direction (ms, as Date.now); maintained by touch(). */
  lastActiveMs: number;
  /** Neighbours in the table's order of activity; the table's own (start them undefined). */
  olderEntry: TableEntry | undefined;
  newerEntry: TableEntry | undefined;
}

export type RemovalReason = 'idle' | 'evicted';

/**
 * UDP sessions by client key, in order of last activity, with idle expiry and a size cap.
 *
 * Activity moves a session to the newest end of a list linked through the sessions themselves (a
 * few field writes per datagram; the Map is only for lookups), so the oldest end is always the
 * least recently active session: one timer, armed for its expiry, sweeps idle sessions from there
 * (no timer per session), and when the table is full it is the one to evict.
 * The table only orders and removes; onRemove (the owner) closes what it removed.
 */
export class UdpSessionTable<S extends TableEntry> {
  /** Made with the first session: most ports of a large cluster never see one. */
  #sessions: Map<string, S> | undefined;
  readonly #idleTimeoutMs: number;
  readonly #maxSessions: number;
  readonly #onRemove: (session: S, reason: RemovalReason) => void;
  readonly #now: () => number;
  readonly #refresh: (() => void) | undefined;
  #oldest: S | undefined;
  #newest: S | undefined;
  #timer: NodeJS.Timeout | undefined;

  /**
   * `refresh` is called before the order is used (a sweep, an eviction): sessions whose datagrams
   * pass outside JavaScript (the native data path) report their activity there, through touchAt().
   */
  constructor(idleTimeoutMs: number, maxSessions: number, onRemove: (session: S, reason: RemovalReason) => void, now: () => number = Date.now, refresh?: () => void) {
    this.#idleTimeoutMs = idleTimeoutMs;
    this.#maxSessions = maxSessions;
    this.#onRemove = onRemove;
    this.#now = now;
    this.#refresh = refresh;
  }

  get size(): number {
    return this.#sessions?.size ?? 0;
  }

  get(key: string): S | undefined {
    return this.#sessions?.get(key);
  }

  /** Whether adding a session now would exceed maxSessions. */
  get full(): boolean {
    return this.size >= this.#maxSessions;
  }

  /** Removes the least recently active session (reported to onRemove as 'evicted'). */
  evictOldest(): S | undefined {
    this.#refresh?.();
    const oldest = this.#oldest;
    if (oldest === undefined) return undefined;
    this.#remove(oldest);
    this.#onRemove(oldest, 'evicted');
    return oldest;
  }

  /** Adds a new session as the most recently active one. */
  add(session: S): void {
    session.lastActiveMs = this.#now();
    (this.#sessions ??= new Map()).set(session.key, session);
    this.#append(session);
    this.#timer ??= this.#arm(this.#idleTimeoutMs);
  }

  /** Marks the session active now (on a datagram in either direction). */
  touch(session: S): void {
    this.touchAt(session, this.#now());
  }

  /** Marks the session last active at `lastActiveMs` (callers report in order of time). */
  touchAt(session: S, lastActiveMs: number): void {
    session.lastActiveMs = lastActiveMs;
    // A session removed meanwhile (evicted, errored) is not brought back.
    if (session === this.#newest || !this.#linked(session)) return;
    this.#unlink(session);
    this.#append(session);
  }

  /** Forgets a session the owner closed for its own reasons (upstream error). */
  delete(session: S): void {
    if (this.#linked(session)) this.#remove(session);
  }

  /** Removes every session without calling onRemove, and stops the timer; returns them. */
  clear(): S[] {
    const all = this.#sessions === undefined ? [] : [...this.#sessions.values()];
    for (const session of all) this.#unlink(session);
    this.#sessions?.clear();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    return all;
  }

  #linked(session: S): boolean {
    return session.olderEntry !== undefined || this.#oldest === session;
  }

  #remove(session: S): void {
    this.#unlink(session);
    this.#sessions?.delete(session.key);
  }

  #append(session: S): void {
    const newest = this.#newest;
    session.olderEntry = newest;
    session.newerEntry = undefined;
    if (newest === undefined) this.#oldest = session;
    else newest.newerEntry = session;
    this.#newest = session;
  }

  #unlink(session: S): void {
    const older = session.olderEntry as S | undefined;
    const newer = session.newerEntry as S | undefined;
    if (older === undefined) this.#oldest = newer;
    else older.newerEntry = newer;
    if (newer === undefined) this.#newest = older;
    else newer.olderEntry = older;
    session.olderEntry = undefined;
    session.newerEntry = undefined;
  }

  #arm(delayMs: number): NodeJS.Timeout {
    const timer = setTimeout(this.#sweep, Math.max(1, delayMs));
    // The listening sockets keep the process alive while the proxy runs; the sweep alone must not.
    timer.unref();
    return timer;
  }

  readonly #sweep = (): void => {
    this.#timer = undefined;
    this.#refresh?.();
    const now = this.#now();
    const idle = this.#idleTimeoutMs;
    for (let session = this.#oldest; session !== undefined; session = this.#oldest) {
      const dueMs = session.lastActiveMs + idle;
      if (dueMs > now) {
        this.#timer = this.#arm(dueMs - now);
        return;
      }
      this.#remove(session);
      this.#onRemove(session, 'idle');
    }
  };
}
