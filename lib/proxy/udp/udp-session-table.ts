/** What the table needs of a session. */
export interface TableEntry {
  readonly key: string;
  /** Last datagram in either direction (ms, as Date.now); maintained by touch(). */
  lastActiveMs: number;
}

export type RemovalReason = 'idle' | 'evicted';

/**
 * UDP sessions by client key, in order of last activity, with idle expiry and a size cap.
 *
 * Activity moves a session to the end of the Map (delete + set), so the head is always the least
 * recently active session: one timer, armed for the head's expiry, sweeps idle sessions from the
 * head (no timer per session), and when the table is full the head is the one to evict.
 * The table only orders and removes; onRemove (the owner) closes what it removed.
 */
export class UdpSessionTable<S extends TableEntry> {
  readonly #sessions = new Map<string, S>();
  readonly #idleTimeoutMs: number;
  readonly #maxSessions: number;
  readonly #onRemove: (session: S, reason: RemovalReason) => void;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;

  constructor(idleTimeoutMs: number, maxSessions: number, onRemove: (session: S, reason: RemovalReason) => void, now: () => number = Date.now) {
    this.#idleTimeoutMs = idleTimeoutMs;
    this.#maxSessions = maxSessions;
    this.#onRemove = onRemove;
    this.#now = now;
  }

  get size(): number {
    return this.#sessions.size;
  }

  get(key: string): S | undefined {
    return this.#sessions.get(key);
  }

  /** Whether adding a session now would exceed maxSessions. */
  get full(): boolean {
    return this.#sessions.size >= this.#maxSessions;
  }

  /** Removes the least recently active session (reported to onRemove as 'evicted'). */
  evictOldest(): S | undefined {
    const oldest = this.#sessions.values().next();
    if (oldest.done === true) return undefined;
    this.#sessions.delete(oldest.value.key);
    this.#onRemove(oldest.value, 'evicted');
    return oldest.value;
  }

  /** Adds a new session as the most recently active one. */
  add(session: S): void {
    session.lastActiveMs = this.#now();
    this.#sessions.set(session.key, session);
    this.#timer ??= this.#arm(this.#idleTimeoutMs);
  }

  /** Marks the session active now (on a datagram in either direction). */
  touch(session: S): void {
    session.lastActiveMs = this.#now();
    const sessions = this.#sessions;
    // Re-insert to move it to the end (a Map keeps insertion order). A session removed meanwhile
    // (evicted, errored) is not brought back.
    if (sessions.delete(session.key)) sessions.set(session.key, session);
  }

  /** Forgets a session the owner closed for its own reasons (upstream error). */
  delete(session: S): void {
    if (this.#sessions.get(session.key) === session) this.#sessions.delete(session.key);
  }

  /** Removes every session without calling onRemove, and stops the timer; returns them. */
  clear(): S[] {
    const all = [...this.#sessions.values()];
    this.#sessions.clear();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    return all;
  }

  #arm(delayMs: number): NodeJS.Timeout {
    const timer = setTimeout(this.#sweep, Math.max(1, delayMs));
    // The listening sockets keep the process alive while the proxy runs; the sweep alone must not.
    timer.unref();
    return timer;
  }

  readonly #sweep = (): void => {
    this.#timer = undefined;
    const now = this.#now();
    const idle = this.#idleTimeoutMs;
    for (const session of this.#sessions.values()) {
      const dueMs = session.lastActiveMs + idle;
      if (dueMs > now) {
        this.#timer = this.#arm(dueMs - now);
        return;
      }
      this.#sessions.delete(session.key);
      this.#onRemove(session, 'idle');
    }
  };
}
