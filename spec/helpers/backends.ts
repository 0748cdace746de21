import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { ExecutionContext } from 'ava';

/** A started test backend; close() also destroys open connections. */
export interface Backend {
  readonly host: string;
  readonly port: number;
  readonly name: string;
  /** Connections (TCP) or datagrams (UDP) received. */
  count(): number;
  close(): Promise<void>;
}

/** Awaits a backend being started and closes it when the test ends, passed or failed. */
export async function backendFor(t: ExecutionContext, starting: Promise<Backend>): Promise<Backend> {
  const backend = await starting;
  t.teardown(() => backend.close());
  return backend;
}

/** TCP echo server: writes back everything it reads, half-closes after the client's FIN. */
export async function tcpEcho(host = '127.0.0.1', port = 0, name = 'echo'): Promise<Backend> {
  return tcpServer((s) => s.pipe(s), host, port, name);
}

/** TCP server with a connection handler of the test's own; half-open connections are allowed. */
export async function tcpServer(onConnection: (s: net.Socket) => void, host = '127.0.0.1', port = 0, name = 'tcp'): Promise<Backend> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    n++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConnection(s);
  });
  return listenTcp(server, host, port, name, () => n, sockets);
}

/** TCP server that writes its name and closes: tells which backend a connection reached. */
export async function tcpName(name: string, host = '127.0.0.1', port = 0): Promise<Backend> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    n++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.end(name);
  });
  return listenTcp(server, host, port, name, () => n, sockets);
}

/** HTTP server answering the request path without its leading slash (the legacy tests' path echo). */
export async function httpPathEcho(host = '127.0.0.1', port = 0, name = 'http'): Promise<Backend> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    res.setHeader('x-backend', name);
    res.end((req.url ?? '/').slice(1));
  });
  server.on('connection', (s: net.Socket) => {
    n++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return listenTcp(server, host, port, name, () => n, sockets);
}

async function listenTcp(server: net.Server, host: string, port: number, name: string, count: () => number, sockets: Set<net.Socket>): Promise<Backend> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    host,
    port: addr.port,
    name,
    count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** UDP echo server; with `name` it answers every datagram with its name instead of the payload. */
export async function udpEcho(host = '127.0.0.1', port = 0, name?: string): Promise<Backend> {
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  let n = 0;
  sock.on('message', (msg, rinfo) => {
    n++;
    sock.send(name === undefined ? msg : Buffer.from(name), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, host, () => resolve());
  });
  return {
    host,
    port: sock.address().port,
    name: name ?? 'udp-echo',
    count: () => n,
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
}

/** Sends one datagram and resolves with the first reply, or rejects after timeoutMs. */
export async function udpRequest(host: string, port: number, payload: Buffer | string, timeoutMs = 2000, from?: { host: string; port?: number }): Promise<Buffer> {
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  try {
    if (from) await new Promise<void>((resolve) => sock.bind(from.port ?? 0, from.host, () => resolve()));
    return await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no UDP reply from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
      sock.once('message', (msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
      sock.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      sock.send(typeof payload === 'string' ? Buffer.from(payload) : payload, port, host);
    });
  } finally {
    sock.close();
  }
}

/** Opens a TCP connection, optionally sends data and half-closes, and resolves with everything read until EOF. */
export async function tcpRequest(host: string, port: number, payload?: Buffer | string, timeoutMs = 5000): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ host, port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no EOF from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('connect', () => {
      if (payload !== undefined) s.end(payload);
    });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      clearTimeout(timer);
      s.end();
      resolve(Buffer.concat(chunks));
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** A port that was free a moment ago on host (bind to 0, read, close). */
/** A UDP port nothing listens on (bound, read, closed): datagrams to it draw ICMP port unreachable. */
export async function closedUdpPort(host = '127.0.0.1'): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, host, () => resolve()));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen({ host, port: 0 }, () => resolve()));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Whether a TCP connection to host:port is accepted (it is closed at once). */
export function tcpConnects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Whether a TCP connection to host:port is refused (or otherwise fails). */
export async function tcpRefused(host: string, port: number): Promise<boolean> {
  return !(await tcpConnects(host, port));
}
