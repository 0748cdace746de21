import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { ClosedError, ListenError, PortConflictError } from '../errors.js';
import { logger } from '../log.js';
import { parseAddress } from '../net/parse-address.js';
import type { DnsResponder, Outcome } from './dns-responder.js';

export interface DnsServerOptions {
  /** HOST:PORT, as --dns-bind-address; port 0 lets the kernel choose one free for UDP and TCP both. */
  readonly address: string;
  readonly responder: DnsResponder;
  /** TCP connections at once; more are closed on accept (RFC 7766 6.2.2 allows that). */
  readonly maxTcpConnections?: number;
  /** A TCP connection with nothing to read for this long is closed: a stalled client holds nothing. */
  readonly tcpIdleTimeoutMs?: number;
}

/** Queries a TCP connection may have awaiting an answer before the server stops reading from it. */
const MAX_TCP_PIPELINE = 16;
/** With port 0, how often to look for a port free for both UDP and TCP. */
const PORT_ATTEMPTS = 10;

const log = logger('dns');

/**
 * The DNS server of --dns-bind-address: UDP and TCP on one address and port, every message handed
 * to a DnsResponder. One bad client costs at most its own connection: each TCP connection has an
 * idle timeout and a bounded pipeline, and the number of connections is capped.
 */
export class DnsServer {
  readonly #address: string;
  readonly #responder: DnsResponder;
  readonly #maxTcp: number;
  readonly #idleMs: number;
  #udp: dgram.Socket | undefined;
  #tcp: net.Server | undefined;
  readonly #connections = new Set<net.Socket>();
  #bound: { host: string; port: number } | undefined;
  #closed = false;
  readonly #outcomes = new Map<Outcome, number>();

  constructor(options: DnsServerOptions) {
    parseAddress(options.address, '--dns-bind-address');
    this.#address = options.address;
    this.#responder = options.responder;
    this.#maxTcp = options.maxTcpConnections ?? 256;
    this.#idleMs = options.tcpIdleTimeoutMs ?? 10_000;
  }

  /** Where it listens, once started. */
  address(): { host: string; port: number } | undefined {
    return this.#bound;
  }

  /** Messages handled so far, by what came of them. */
  outcomes(): Readonly<Partial<Record<Outcome, number>>> {
    return Object.fromEntries(this.#outcomes);
  }

  #count(outcome: Outcome): void {
    this.#outcomes.set(outcome, (this.#outcomes.get(outcome) ?? 0) + 1);
  }

  async start(): Promise<void> {
    if (this.#closed) throw new ClosedError('DNS server');
    const { host: name, port } = parseAddress(this.#address, '--dns-bind-address');
    const host = net.isIP(name) !== 0 ? name : (await lookup(name)).address;
    for (let attempt = 1; ; attempt++) {
      const udp = await this.#bindUdp(host, port);
      const udpPort = udp.address().port;
      try {
        this.#tcp = await this.#listenTcp(host, udpPort);
        this.#udp = udp;
        this.#bound = { host, port: udpPort };
        break;
      } catch (err) {
        udp.close();
        // The kernel's UDP port may be taken for TCP: with port 0, try another one.
        if (port !== 0 || attempt >= PORT_ATTEMPTS || !(err instanceof PortConflictError)) throw err;
      }
    }
    this.#udp.on('message', (msg, rinfo) => this.#onDatagram(msg, rinfo));
    this.#udp.on('error', (err) => log.warn('DNS UDP socket error', { error: err.message }));
    log.info('DNS server listening', { address: this.#bound.host, port: this.#bound.port });
  }

  /** Stops listening and ends open TCP connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const tcp = this.#tcp;
    this.#udp?.close();
    for (const c of this.#connections) c.end();
    if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
    this.destroy();
  }

  /** Stops at once. Idempotent. */
  destroy(): void {
    this.#closed = true;
    try {
      this.#udp?.close();
    } catch {
      // Already closed.
    }
    this.#tcp?.close();
    for (const c of this.#connections) c.destroy();
    this.#connections.clear();
  }

  #bindUdp(host: string, port: number): Promise<dgram.Socket> {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    return new Promise((resolve, reject) => {
      socket.once('error', (err: NodeJS.ErrnoException) => {
        socket.close();
        reject(err.code === 'EADDRINUSE' ? new PortConflictError(host, port, { cause: err }) : new ListenError(host, port, { cause: err }));
      });
      socket.bind({ address: host, port, exclusive: true }, () => {
        socket.removeAllListeners('error');
        resolve(socket);
      });
    });
  }

  #listenTcp(host: string, port: number): Promise<net.Server> {
    const server = net.createServer((c) => this.#onConnection(c));
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(err.code === 'EADDRINUSE' ? new PortConflictError(host, port, { cause: err }) : new ListenError(host, port, { cause: err }));
      });
      server.listen({ host, port, exclusive: true }, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => log.warn('DNS TCP server error', { error: err.message }));
        resolve(server);
      });
    });
  }

  #onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.#responder.respond(msg, 'udp').then(
      ({ reply, outcome }) => {
        this.#count(outcome);
        if (reply && !this.#closed) this.#udp?.send(reply, rinfo.port, rinfo.address);
      },
      (err: unknown) => log.warn('DNS query failed', { client: rinfo.address, error: (err as Error).message }),
    );
  }

  #onConnection(c: net.Socket): void {
    if (this.#closed || this.#connections.size >= this.#maxTcp) {
      c.destroy();
      return;
    }
    this.#connections.add(c);
    c.setTimeout(this.#idleMs, () => c.destroy());
    c.on('error', () => c.destroy());
    c.on('close', () => this.#connections.delete(c));
    let buf: Buffer = Buffer.alloc(0);
    let pending = 0;
    c.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = Buffer.from(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        pending++;
        if (pending >= MAX_TCP_PIPELINE) c.pause();
        this.#responder.respond(msg, 'tcp').then(
          ({ reply, outcome }) => {
            this.#count(outcome);
            pending--;
            if (pending < MAX_TCP_PIPELINE) c.resume();
            if (!reply) {
              // Nothing to answer with (no header): the stream's framing cannot be trusted either.
              c.destroy();
              return;
            }
            if (c.destroyed) return;
            const head = Buffer.alloc(2);
            head.writeUInt16BE(reply.length, 0);
            c.write(Buffer.concat([head, reply]));
          },
          () => c.destroy(),
        );
      }
    });
  }
}
