import { readdirSync, readlinkSync } from 'node:fs';

/**
 * This process's sockets, as descriptor → socket inode. Sockets, not every descriptor: Node itself
 * may open or close other descriptors (its loop's, a file's) while a test runs.
 */
export function openSockets(): Map<string, string> {
  const out = new Map<string, string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith('socket:')) out.set(fd, target);
    } catch {
      // Closed between the listing and the read.
    }
  }
  return out;
}

/** The sockets in `after` (by default, those open now) that were not in `before`. */
export function newSockets(before: Map<string, string>, after: Map<string, string> = openSockets()): Map<string, string> {
  return new Map([...after].filter(([fd, target]) => before.get(fd) !== target));
}

/** Sockets as "fd → socket:[inode]" lines, for an assertion's message. */
export function socketLines(sockets: Map<string, string>): string[] {
  return [...sockets].map(([fd, target]) => `${fd} → ${target}`);
}
