import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { logger } from '../log.js';
import { ResolvConf } from './resolv-conf.js';

export type DnsTransport = 'udp' | 'tcp';

/** Where queries for names outside the cluster domain go. */
export interface Upstream {
  /** The upstream's reply (with the query's ID), or undefined when no server answered. */
  forward(query: Buffer, transport: DnsTransport): Promise<Buffer | undefined>;
  close(): void;
}

export interface UpstreamForwarderOptions {
  /** The resolv.conf to read name servers from. */
  readonly resolvConf: string;
  /** The name servers' port: 53, as resolv.conf cannot say otherwise (other values are for tests). */
  readonly port?: number;
  /** This server's own address: a name server that is this server would send every query back here. */
  readonly self?: { readonly host: string; readonly port: number };
  /** Per name server, as glibc's default `timeout:` is 5 s for all attempts. */
  readonly timeoutMs?: number;
  /** Forwarded queries at once; more get no answer from here (SERVFAIL), not unbounded sockets. */
  readonly maxInFlight?: number;
}

const log = logger('dns');

/**
 * Forwards a query as it came, bytes unchanged but the ID, to the resolv.conf name servers in
 * order until one answers: over UDP from a fresh socket (a random source port and a random ID,
 * so replies cannot be guessed), or over TCP for a TCP query. The reply goes back as it came, a
 * truncated one included, so the client retries over TCP itself.
 */
export class UpstreamForwarder implements Upstream {
  readonly #conf: ResolvConf;
  readonly #port: number;
  readonly #self: { host: string; port: number } | undefined;
  readonly #timeoutMs: number;
  readonly #maxInFlight: number;
  readonly #open = new Set<{ destroy(): void }>();
  #inFlight = 0;
  #closed = false;
  #lastWarning = '';

  constructor(options: UpstreamForwarderOptions) {
    this.#conf = new ResolvConf(options.resolvConf);
    this.#port = options.port ?? 53;
    this.#self = options.self;
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#maxInFlight = options.maxInFlight ?? 256;
  }

  async forward(query: Buffer, transport: DnsTransport): Promise<Buffer | undefined> {
    if (this.#closed || this.#inFlight >= this.#maxInFlight) return undefined;
    this.#inFlight++;
    try {
      const { servers, error } = await this.#conf.nameservers();
      const usable = servers.filter((s) => !this.#isSelf(s));
      if (usable.length === 0) {
        this.#warnOnce(error ?? 'lists only this server', { resolvConf: this.#conf.path });
        return undefined;
      }
      const id = query.readUInt16BE(0);
      for (const server of usable) {
        const reply = transport === 'udp' ? await this.#udp(server, query) : await this.#tcp(server, query);
        if (this.#closed) return undefined;
        if (reply) {
          reply.writeUInt16BE(id, 0);
          return reply;
        }
      }
      return undefined;
    } finally {
      this.#inFlight--;
    }
  }

  /** Idempotent: ends every exchange in progress. */
  close(): void {
    this.#closed = true;
    for (const s of this.#open) s.destroy();
    this.#open.clear();
  }

  #isSelf(server: string): boolean {
    if (!this.#self || this.#self.port !== this.#port) return false;
    const host = this.#self.host;
    return server === host || ((host === '0.0.0.0' || host === '::') && (server.startsWith('127.') || server === '::1'));
  }

  #warnOnce(reason: string, fields: Record<string, unknown>): void {
    if (reason === this.#lastWarning) return;
    this.#lastWarning = reason;
    log.warn('no upstream name server to forward to', { reason, ...fields });
  }

  #udp(server: string, query: Buffer): Promise<Buffer | undefined> {
    const socket = dgram.createSocket(net.isIPv6(server) ? 'udp6' : 'udp4');
    const id = randomInt(65536);
    const out = Buffer.from(query);
    out.writeUInt16BE(id, 0);
    return new Promise((resolve) => {
      const entry = { destroy: () => finish(undefined) };
      const finish = (reply: Buffer | undefined): void => {
        if (!this.#open.delete(entry)) return;
        clearTimeout(timer);
        socket.close();
        resolve(reply);
      };
      this.#open.add(entry);
      const timer = setTimeout(() => finish(undefined), this.#timeoutMs);
      socket.on('error', () => finish(undefined));
      socket.on('message', (msg, rinfo) => {
        // Only the server asked, with our ID, is believed; anything else is dropped.
        if (rinfo.port === this.#port && sameAddress(rinfo.address, server) && msg.length >= 12 && msg.readUInt16BE(0) === id) finish(msg);
      });
      socket.send(out, this.#port, server, (err) => {
        if (err) finish(undefined);
      });
    });
  }

  #tcp(server: string, query: Buffer): Promise<Buffer | undefined> {
    const framed = Buffer.alloc(query.length + 2);
    framed.writeUInt16BE(query.length, 0);
    query.copy(framed, 2);
    const id = randomInt(65536);
    framed.writeUInt16BE(id, 2);
    return new Promise((resolve) => {
      const socket = net.connect({ host: server, port: this.#port });
      let buf = Buffer.alloc(0);
      const entry = { destroy: () => finish(undefined) };
      const finish = (reply: Buffer | undefined): void => {
        if (!this.#open.delete(entry)) return;
        clearTimeout(timer);
        socket.destroy();
        resolve(reply);
      };
      this.#open.add(entry);
      const timer = setTimeout(() => finish(undefined), this.#timeoutMs);
      socket.on('error', () => finish(undefined));
      socket.on('close', () => finish(undefined));
      socket.on('connect', () => socket.write(framed));
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < 2) return;
        const len = buf.readUInt16BE(0);
        if (buf.length < len + 2) return;
        const msg = buf.subarray(2, 2 + len);
        finish(msg.length >= 12 && msg.readUInt16BE(0) === id ? Buffer.from(msg) : undefined);
      });
    });
  }
}

function sameAddress(a: string, b: string): boolean {
  return a === b || a === `::ffff:${b}` || (net.isIPv6(a) && net.isIPv6(b) && a.toLowerCase() === b.toLowerCase());
}
