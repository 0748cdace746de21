import { SWEEP_CLOCK } from './sweep-clock.js';
import type { Sweeper } from './sweep-clock.js';

/** What the sweep needs of a connection (TcpForwarder). */
export interface IdleTracked {
  /** Sweeps since the last byte either way; the data path zeroes it on every read. */
  idleTicks: number;
  /** Whether it is already closing for idleness (closeIdle() was called once). */
  readonly idleClosing: boolean;
  closeIdle(): void;
  /** When forwarding started (performance.now() ms), for the max connection age. */
  readonly startedAt: number;
  /** Its place in the age's jitter window, in [0, 1); negative until the sweep draws it. */
  ageJitter: number;
  /** When the max connection age began closing it (performance.now() ms); 0 = not yet. */
  readonly agedAt: number;
  /** The max connection age is reached: FIN to the endpoint (see TcpForwarder.closeAged()). */
  closeAged(now: number): void;
  /** The endpoint had its grace: FIN to the client too once the endpoint is quiet; the next sweep closes what is still open. */
  closeAfterGrace(): void;
}

/** Sweeps per idle timeout: a connection closes between 1 and 1 + 1/TICKS timeouts after its last byte. */
const TICKS = 4;
/** Bounds of the sweep interval: a short timeout (tests) is still swept, a long one at least once a minute. */
const MIN_TICK_MS = 25;
const MAX_TICK_MS = 60_000;
/**
 * The jitter of the max connection age: a connection closes at a uniformly random moment in
 * [age, age * (1 + AGE_JITTER)], drawn once per connection, so connections opened together
 * (a client pool after a restart) spread their reconnects over a tenth of the age.
 */
export const AGE_JITTER = 0.1;
/** Sweeps per jitter window, so that the jitter is not lost to the sweep's granularity. */
const AGE_TICKS = 4;
/** The longest an endpoint is given to finish and close after the age's FIN before the client gets its FIN too. */
const MAX_AGE_GRACE_MS = 30_000;

function performanceNow(): number {
  return performance.now();
}

function tickOf(windowMs: number, ticks: number): number {
  return Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.floor(windowMs / ticks)));
}

/**
 * The per-connection timers of the TCP connections of one proxy socket, all on one sweep that walks
 * the connections, driven by the process's SweepClock (one timer for all ports of a tick length):
 * the idle timeout (no byte either way for that long) and the max connection age. No timer per connection, and nothing done per read but zeroing a counter
 * (TcpForwarder.idleTicks), so it costs the data path nothing measurable; a sweep costs
 * O(connections), once per tick (at most once a minute for long timeouts).
 *
 * The age closes gracefully in two steps: at the age, a FIN to the endpoint (as if the client had
 * closed its sending side: everything the client sent so far is delivered first, the endpoint
 * answers what it has and closes, and its FIN reaches the client after its last bytes, by the
 * half-close rules of TcpForwarder); if the endpoint has not closed after a grace of a tenth of the
 * age (at most 30 s) and is quiet, a FIN to the client too, and one sweep later whatever is still
 * open is closed, as with the idle timeout.
 */
export class IdleSweep implements Sweeper {
  readonly #connections: () => Iterable<IdleTracked>;
  readonly #random: () => number;
  readonly #now: () => number;
  #timeoutMs = 0;
  #maxAgeMs = 0;
  #tickMs = 0;
  /** Sweeps without a byte after which a connection is idle. */
  #ticks = 0;
  /** Whether it is joined to the clock (at #tickMs). */
  #sweeping = false;

  /**
   * connections: the live connections at each sweep; random: the age's jitter, [0, 1); now: the
   * clock of IdleTracked.startedAt (tests inject a seeded random and their own clock).
   */
  constructor(connections: () => Iterable<IdleTracked>, random: () => number = Math.random, now: () => number = performanceNow) {
    this.#connections = connections;
    this.#random = random;
    this.#now = now;
  }

  /** The interval between sweeps in force (ms; 0 = not sweeping). */
  get tickMs(): number {
    return this.#sweeping ? this.#tickMs : 0;
  }

  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  get maxAgeMs(): number {
    return this.#maxAgeMs;
  }

  /** Sets the idle timeout (0 = off) and (re)joins the clock. Counts already accumulated are kept. */
  set(timeoutMs: number): void {
    this.#configure(timeoutMs, this.#maxAgeMs);
  }

  /** Sets the max connection age (0 = off); established connections count their age from their start. */
  setMaxAge(maxAgeMs: number): void {
    this.#configure(this.#timeoutMs, maxAgeMs);
  }

  #configure(timeoutMs: number, maxAgeMs: number): void {
    if (timeoutMs === this.#timeoutMs && maxAgeMs === this.#maxAgeMs && (this.#sweeping || (timeoutMs === 0 && maxAgeMs === 0))) return;
    this.stop();
    this.#timeoutMs = timeoutMs;
    this.#maxAgeMs = maxAgeMs;
    if (timeoutMs <= 0 && maxAgeMs <= 0) return;
    const idleTick = timeoutMs > 0 ? tickOf(timeoutMs, TICKS) : MAX_TICK_MS;
    const ageTick = maxAgeMs > 0 ? tickOf(maxAgeMs * AGE_JITTER, AGE_TICKS) : MAX_TICK_MS;
    this.#tickMs = Math.min(idleTick, ageTick);
    this.#ticks = timeoutMs > 0 ? Math.max(1, Math.ceil(timeoutMs / this.#tickMs)) : Infinity;
    SWEEP_CLOCK.join(this, this.#tickMs);
    this.#sweeping = true;
  }

  stop(): void {
    if (this.#sweeping) SWEEP_CLOCK.leave(this, this.#tickMs);
    this.#sweeping = false;
  }

  /** One sweep (the clock's; public so that a test can drive the sweep with its own clock). */
  sweep(): void {
    const ticks = this.#ticks;
    const maxAge = this.#maxAgeMs;
    const now = maxAge > 0 ? this.#now() : 0;
    const grace = Math.max(this.#tickMs, Math.min(MAX_AGE_GRACE_MS, maxAge * AGE_JITTER));
    for (const c of this.#connections()) {
      if (c.idleClosing) {
        // One tick of grace after the FIN: whatever is still open now is closed.
        c.closeIdle();
        continue;
      }
      // More than `ticks` sweeps: the first one may come just after the last byte.
      if (++c.idleTicks > ticks) {
        c.closeIdle();
        continue;
      }
      if (maxAge <= 0) continue;
      if (c.agedAt === 0) {
        if (c.ageJitter < 0) c.ageJitter = this.#random();
        if (now - c.startedAt >= maxAge * (1 + AGE_JITTER * c.ageJitter)) c.closeAged(now);
      } else if (now - c.agedAt >= grace) {
        c.closeAfterGrace();
      }
    }
  }
}
