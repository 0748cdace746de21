import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import net from 'node:net';
import { WebSocketServer } from 'ws';
import type WebSocket from 'ws';

/** The only port-forward protocol served, as the kubelet's WebSocket port-forward speaks it. */
export const PORT_FORWARD_PROTOCOL = 'v4.channel.k8s.io';

const PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/portforward$/;

/** Where a pod's port really is: a loopback backend of the test. */
export interface PodPortTarget {
  readonly host: string;
  readonly port: number;
}

export interface SeenPortForward {
  readonly namespace: string;
  readonly pod: string;
  readonly port: number;
  /** 101 when upgraded, else the error status answered; 0 when left unanswered. */
  readonly status: number;
  readonly protocol: string;
}

/** Pod-side reads queued in the WebSocket beyond this pause the backend. */
const WS_HIGH_WATER_MARK = 1 << 20;

/**
 * The pod port-forward endpoint of the test API server, as a real API server and kubelet serve it
 * over WebSocket: `GET /api/v1/namespaces/NS/pods/NAME/portforward?ports=P`, upgraded with the
 * subprotocol `v4.channel.k8s.io`. Every message starts with a channel byte: 0 is the port's data
 * (both ways), 1 its error channel (server to client). The first message on each channel is the
 * port number, 2 bytes little-endian. Then the kubelet's behaviour: connect to the pod's port
 * (here: the loopback backend the test set for that pod and port), copy both ways, write the
 * failure to the error channel and close when the connection cannot be made, close the WebSocket
 * once the pod's side of the connection has ended, end the pod's connection when the WebSocket
 * closes. An unknown pod gets 404, a pod set to refuse() its status (403 as without RBAC), a
 * missing or bad `ports` 400, all as Status objects.
 */
export class PodPortForwards {
  readonly requests: SeenPortForward[] = [];
  readonly #pods = new Map<string, { uid: string; ports: Map<number, PodPortTarget> }>();
  readonly #refusals = new Map<string, number>();
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, handleProtocols: (protocols) => (protocols.has(PORT_FORWARD_PROTOCOL) ? PORT_FORWARD_PROTOCOL : false) });
  readonly #streams = new Set<{ ws: WebSocket; backend: net.Socket | undefined }>();
  readonly #hanging = new Set<net.Socket>();

  /** A pod whose ports lead to these targets (a number: 127.0.0.1 at that port); replaces one set before. */
  setPod(namespace: string, name: string, ports: Readonly<Record<number, PodPortTarget | number>>): void {
    const map = new Map<number, PodPortTarget>();
    for (const [port, target] of Object.entries(ports)) map.set(Number(port), typeof target === 'number' ? { host: '127.0.0.1', port: target } : target);
    this.#pods.set(`${namespace}/${name}`, { uid: randomUUID(), ports: map });
  }

  /** The pod is gone: new forwards get 404 (open ones go on, as the kubelet's do until the pod's connection ends). */
  deletePod(namespace: string, name: string): void {
    this.#pods.delete(`${namespace}/${name}`);
  }

  /** Answer forwards to this pod with an error status; 'hang' never answers (the client gives up); 0 clears. */
  refuse(namespace: string, name: string, status: number | 'hang'): void {
    if (status === 0) this.#refusals.delete(`${namespace}/${name}`);
    else this.#refusals.set(`${namespace}/${name}`, status === 'hang' ? 0 : status);
  }

  /** Forwarded streams open now. */
  get openStreams(): number {
    return this.#streams.size;
  }

  /** Handles an upgrade request if it is a port-forward (answering anything else with 404). */
  upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer, authorized: boolean): void {
    socket.on('error', () => {});
    const url = new URL(req.url ?? '/', 'http://x');
    const m = PATH.exec(url.pathname);
    const namespace = decodeURIComponent(m?.[1] ?? '');
    const name = decodeURIComponent(m?.[2] ?? '');
    const port = Number(url.searchParams.get('ports'));
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim());
    const answer = (status: number, reason: string, message: string): void => {
      this.requests.push({ namespace, pod: name, port, status, protocol: '' });
      rawStatus(socket, status, reason, message);
    };
    if (!authorized) return answer(401, 'Unauthorized', 'Unauthorized');
    if (!m) return answer(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    const refusal = this.#refusals.get(`${namespace}/${name}`);
    if (refusal === 0) {
      this.requests.push({ namespace, pod: name, port, status: 0, protocol: '' });
      this.#hanging.add(socket);
      socket.on('close', () => this.#hanging.delete(socket));
      return;
    }
    if (refusal !== undefined) return answer(refusal, refusal === 403 ? 'Forbidden' : 'Unknown', `pods "${name}" is forbidden: cannot create resource "pods/portforward" in namespace "${namespace}"`);
    const pod = this.#pods.get(`${namespace}/${name}`);
    if (!pod) return answer(404, 'NotFound', `pods "${name}" not found`);
    if (!/^\d+$/.test(url.searchParams.get('ports') ?? '') || port < 1 || port > 65535) return answer(400, 'BadRequest', 'query parameter "ports" must be one port number');
    if (!offered.includes(PORT_FORWARD_PROTOCOL)) return answer(400, 'BadRequest', `no supported subprotocol: ${PORT_FORWARD_PROTOCOL} is required`);
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.requests.push({ namespace, pod: name, port, status: 101, protocol: ws.protocol });
      this.#forward(ws, name, pod.uid, port, pod.ports.get(port));
    });
  }

  /** Cuts every open stream (the server is stopping). */
  closeAll(): void {
    for (const s of this.#streams) {
      s.ws.terminate();
      s.backend?.destroy();
    }
    this.#streams.clear();
    for (const s of this.#hanging) s.destroy();
  }

  #forward(ws: WebSocket, pod: string, uid: string, port: number, target: PodPortTarget | undefined): void {
    const portFrame = Buffer.alloc(2);
    portFrame.writeUInt16LE(port);
    ws.send(Buffer.concat([Buffer.of(0), portFrame]));
    ws.send(Buffer.concat([Buffer.of(1), portFrame]));
    const stream: { ws: WebSocket; backend: net.Socket | undefined } = { ws, backend: undefined };
    this.#streams.add(stream);
    ws.on('error', () => {});
    const fail = (reason: string): void => {
      ws.send(Buffer.concat([Buffer.of(1), Buffer.from(`error forwarding port ${port} to pod ${pod}, uid ${uid}: ${reason}`)]), () => ws.close());
    };
    if (target === undefined) {
      fail(`failed to connect to localhost:${port} inside namespace of pod: connection refused`);
      ws.on('close', () => this.#streams.delete(stream));
      return;
    }
    const backend = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    stream.backend = backend;
    let connected = false;
    const pending: Buffer[] = [];
    backend.on('connect', () => {
      connected = true;
      for (const p of pending.splice(0)) backend.write(p);
    });
    backend.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) fail(`failed to connect to localhost:${port} inside namespace of pod: ${err.code ?? err.message}`);
      else ws.close();
    });
    backend.on('data', (chunk: Buffer) => {
      ws.send(Buffer.concat([Buffer.of(0), chunk]), () => {
        if (backend.isPaused() && ws.bufferedAmount < WS_HIGH_WATER_MARK) backend.resume();
      });
      if (ws.bufferedAmount >= WS_HIGH_WATER_MARK) backend.pause();
    });
    // The pod's side ended: the kubelet's copy returns and it closes the streams and the WebSocket.
    backend.on('end', () => ws.close());
    backend.on('drain', () => ws.resume());
    ws.on('message', (data: Buffer) => {
      if (data.length === 0 || data[0] !== 0) return;
      const payload = data.subarray(1);
      if (!connected) pending.push(payload);
      else if (!backend.write(payload)) ws.pause();
    });
    ws.on('close', () => {
      this.#streams.delete(stream);
      if (!backend.destroyed) backend.end();
    });
  }
}

function rawStatus(socket: net.Socket, code: number, reason: string, message: string): void {
  const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  socket.end(`HTTP/1.1 ${code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
