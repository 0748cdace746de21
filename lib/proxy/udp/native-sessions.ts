import { NativeSessionGroup } from '../../internals/udp-native.js';
import type { NativeAddress } from '../../internals/udp-native.js';
import type { ProxyStats } from '../proxy-stats.js';
import type { TableEntry, UdpSessionTable } from './udp-session-table.js';

/** What a native session must carry: the id its group gave it. */
export interface NativeEntry extends TableEntry {
  nativeId: number | undefined;
}

/** What the owner does when the native side reports on one of its sessions. */
export interface NativeSessionHandlers<S> {
  upstreamError(session: S, code: string): void;
  replyError(session: S, code: string): void;
  stray(session: S, msg: Buffer, address: string, port: number): void;
}

/**
 * The sessions of one service port that run on the native data path (lib/internals/udp-native.ts):
 * the owner's session objects by native id, their activity fed back into the owner's idle order,
 * and the port's byte counters made to include what the native side moved.
 */
export class NativeSessions<S extends NativeEntry> {
  readonly #group: NativeSessionGroup;
  readonly #byId: Map<number, S>;

  /**
   * Native sessions for one port, whose byte counters `stats` then include; undefined when this
   * process has no native data path.
   */
  static create<S extends NativeEntry>(handlers: NativeSessionHandlers<S>, maxSessions: number, stats: ProxyStats): NativeSessions<S> | undefined {
    const byId = new Map<number, S>();
    const group = NativeSessionGroup.create(
      {
        upstreamError: (id, code) => {
          const s = byId.get(id);
          if (s !== undefined) handlers.upstreamError(s, code);
        },
        replyError: (id, code) => {
          const s = byId.get(id);
          if (s !== undefined) handlers.replyError(s, code);
        },
        stray: (id, msg, address, port) => {
          const s = byId.get(id);
          if (s !== undefined) handlers.stray(s, msg, address, port);
        },
      },
      maxSessions,
    );
    if (group === undefined) return undefined;
    countInto(stats, group);
    return new NativeSessions(group, byId);
  }

  private constructor(group: NativeSessionGroup, byId: Map<number, S>) {
    this.#group = group;
    this.#byId = byId;
  }

  /**
   * Opens the sockets of `session` (made by the owner, not yet in its table) and returns a sender
   * to its endpoint; undefined when the native side could not (the owner then opens it on dgram
   * sockets, which meet the same error, if it persists, the way they always have).
   */
  open(session: S, local: NativeAddress, client: NativeAddress, endpoint: NativeAddress): ((msg: Buffer) => void) | undefined {
    let id: number;
    try {
      id = this.#group.open(local, client, endpoint);
    } catch {
      return undefined;
    }
    session.nativeId = id;
    this.#byId.set(id, session);
    const group = this.#group;
    return (msg) => void group.send(id, msg);
  }

  /** Closes the session's sockets; false if it had none here or they were closed already. */
  close(session: S): boolean {
    const id = session.nativeId;
    if (id === undefined) return false;
    this.#byId.delete(id);
    return this.#group.close(id);
  }

  /** Moves the sessions that passed datagrams natively up the table's order, oldest activity first. */
  refresh(table: UdpSessionTable<S>, now: number = Date.now()): void {
    const pairs = this.#group.takeActive();
    if (pairs.length === 0) return;
    const order: Array<[S, number]> = [];
    for (let i = 0; i < pairs.length; i += 2) {
      const s = this.#byId.get(pairs[i] as number);
      if (s !== undefined) order.push([s, now - (pairs[i + 1] as number)]);
    }
    order.sort((a, b) => a[1] - b[1]);
    for (const [s, at] of order) if (at > s.lastActiveMs) table.touchAt(s, at);
  }
}

/**
 * Makes stats.bytesIn and bytesOut include the native side's totals, exact whenever read (the addon
 * writes them into memory shared with JavaScript). What JavaScript adds stays its own part.
 */
function countInto(stats: ProxyStats, group: NativeSessionGroup): void {
  let ownIn = stats.bytesIn;
  let ownOut = stats.bytesOut;
  Object.defineProperty(stats, 'bytesIn', {
    enumerable: true,
    configurable: true,
    get: () => ownIn + group.bytesIn,
    set: (v: number) => (ownIn = v - group.bytesIn),
  });
  Object.defineProperty(stats, 'bytesOut', {
    enumerable: true,
    configurable: true,
    get: () => ownOut + group.bytesOut,
    set: (v: number) => (ownOut = v - group.bytesOut),
  });
}
