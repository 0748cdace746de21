import { readFile, stat } from 'node:fs/promises';
import net from 'node:net';

/** glibc reads at most this many name servers (MAXNS); later lines are ignored there too. */
const MAX_NAME_SERVERS = 3;
/** How often the file's modification time is looked at: it is edited by hand, DHCP or systemd-resolved. */
const RECHECK_MS = 1000;

/** The `nameserver` addresses of a resolv.conf text, in order, as glibc takes them. */
export function parseNameservers(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && net.isIP(m[1]!) !== 0 && out.length < MAX_NAME_SERVERS) out.push(m[1]!);
  }
  return out;
}

/**
 * The name servers of a resolv.conf file, re-read when the file changes so that a laptop moving
 * between networks keeps forwarding to the right place. A missing or unreadable file gives no
 * servers and the reason.
 */
export class ResolvConf {
  readonly path: string;
  #servers: string[] = [];
  #error: string | undefined;
  /** The file's modification time and size when last read: a change of either reads it again. */
  #stamp = '';
  #checkedMs = -Infinity;
  #reading: Promise<void> | undefined;

  constructor(path: string) {
    this.path = path;
  }

  async nameservers(now = Date.now()): Promise<{ servers: readonly string[]; error: string | undefined }> {
    if (now - this.#checkedMs >= RECHECK_MS) {
      this.#checkedMs = now;
      this.#reading ??= this.#read().finally(() => (this.#reading = undefined));
    }
    if (this.#reading) await this.#reading;
    return { servers: this.#servers, error: this.#error };
  }

  async #read(): Promise<void> {
    try {
      const st = await stat(this.path);
      const stamp = `${st.mtimeMs}/${st.size}/${st.ino}`;
      if (stamp === this.#stamp) return;
      this.#stamp = stamp;
      this.#servers = parseNameservers(await readFile(this.path, 'utf8'));
      this.#error = this.#servers.length === 0 ? 'has no nameserver line' : undefined;
    } catch (err) {
      this.#servers = [];
      this.#stamp = '';
      this.#error = (err as Error).message;
    }
  }
}
