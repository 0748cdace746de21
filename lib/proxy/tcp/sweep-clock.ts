/** What a SweepClock drives: one sweep per tick. */
export interface Sweeper {
  sweep(): void;
}

/** The sweepers of one tick length, on one interval timer. */
interface TickGroup {
  readonly sweepers: Set<Sweeper>;
  readonly timer: NodeJS.Timeout;
}

/**
 * One interval timer per tick length for the whole process, shared by the idle sweeps of every TCP
 * port: with the default idle timeout every port sweeps once a minute, and ten thousand ports cost
 * one timer, not ten thousand (a Timeout object and a closure each, made at start). The timer
 * exists only while a sweeper of its length is joined.
 */
export class SweepClock {
  readonly #groups = new Map<number, TickGroup>();

  /** Sweeps `sweeper` every tickMs from now on (it must not already be joined under another length). */
  join(sweeper: Sweeper, tickMs: number): void {
    let group = this.#groups.get(tickMs);
    if (group === undefined) {
      const sweepers = new Set<Sweeper>();
      const timer = setInterval(() => {
        for (const s of sweepers) s.sweep();
      }, tickMs);
      // The listeners and connections keep the process alive; the sweep alone must not.
      timer.unref();
      group = { sweepers, timer };
      this.#groups.set(tickMs, group);
    }
    group.sweepers.add(sweeper);
  }

  /** Stops sweeping `sweeper` (joined under tickMs); the timer goes with its last sweeper. */
  leave(sweeper: Sweeper, tickMs: number): void {
    const group = this.#groups.get(tickMs);
    if (group === undefined || !group.sweepers.delete(sweeper) || group.sweepers.size > 0) return;
    clearInterval(group.timer);
    this.#groups.delete(tickMs);
  }
}

/** The clock of the process. */
export const SWEEP_CLOCK = new SweepClock();
