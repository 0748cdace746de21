/**
 * Entry point of a data-path worker process (forked by WorkerPool). It accepts connections on
 * listening sockets the agent process opened and shares with it (or on its own sockets bound to the
 * same ports with SO_REUSEPORT), and proxies them with its own balancer, a replica of the agent's.
 * It owns nothing else: no source, no rules, no servers.
 */
import { SchedulingBalancer } from '../balancer/scheduling-balancer.js';
import { holdYoungGeneration } from '../internals/young-generation.js';
import { configureLogging, logger, rootLogger } from '../log.js';
import { DescriptorBudget } from '../proxy/descriptor-budget.js';
import { EndpointBackoff } from '../proxy/endpoint-backoff.js';
import type { ProxySocketKey } from '../model/service-port-name.js';
import type { ListenAddress } from '../proxy/proxy-socket.js';
import { TcpProxySocket } from '../proxy/tcp/tcp-proxy-socket.js';
import { snapshotOf } from './stats-snapshot.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';
import { applyBalancerOps } from './replicated-balancer.js';
import { UdpSessionHost } from './udp-session-host.js';

const log = logger('worker');
const balancer = new SchedulingBalancer();
const backoff = new EndpointBackoff();
/** Each worker has an open-file limit of its own (inherited from the agent): its own budget. */
const budget = new DescriptorBudget();
/** Sockets accepting now. */
const open = new Map<number, TcpProxySocket>();
/** Closed sockets whose connections are still finishing: their counters are still reported. */
const closed = new Map<number, TcpProxySocket>();
/** Handles of a socket arriving one message each. */
const arriving = new Map<number, object[]>();
/** UDP sessions the agent placed here, per UDP socket. */
const udp = new Map<number, UdpSessionHost>();

/**
 * The agent hands its ports over once its first sync opens them (10,000 of them, in batches or
 * one message each): the young generation is held until then (see holdYoungGeneration()), and let grow once
 * ports have come and none has for a while.
 */
const START_UP_QUIET_MS = 1000;
const releaseYoungGeneration = holdYoungGeneration();
let lastPortMs: number | undefined;
const startUpOver = setInterval(() => {
  if (lastPortMs === undefined || performance.now() - lastPortMs < START_UP_QUIET_MS) return;
  clearInterval(startUpOver);
  releaseYoungGeneration();
}, START_UP_QUIET_MS);
startUpOver.unref();

function send(message: FromWorker): void {
  if (process.connected) process.send!(message);
}

async function onListen(m: Extract<ToWorker, { t: 'listen' }>, handle: object | undefined): Promise<void> {
  if (handle === undefined) {
    send({ t: 'listening', id: m.id, error: 'no handle arrived' });
    return;
  }
  const handles = arriving.get(m.id) ?? [];
  handles[m.index] = handle;
  arriving.set(m.id, handles);
  if (handles.filter(Boolean).length < m.count) return;
  arriving.delete(m.id);
  const error = await serve(m, { handles });
  send({ t: 'listening', id: m.id, ...(error !== undefined ? { error } : {}) });
}

/**
 * Starts accepting on shared socket `m.id`, on the agent's handles or with sockets of its own.
 * Resolves with the error if it cannot (none if the socket was closed meanwhile).
 */
async function serve(m: Extract<ToWorker, { t: 'listen' | 'bind' }>, listeners: { handles: object[] } | { reusePort: true }): Promise<string | undefined> {
  const socket = new TcpProxySocket({ spn: m.spn, listen: m.addresses as ListenAddress[], ...listeners, balancer, backoff, budget, idleTimeoutMs: m.idleTimeoutMs, policy: m.policy });
  // In `open` while it starts: a 'close' arriving meanwhile must reach it, or this process would
  // keep the port bound after the agent let it go.
  open.set(m.id, socket);
  try {
    await socket.start();
    return undefined;
  } catch (err) {
    if (open.get(m.id) !== socket) return undefined; // closed meanwhile
    open.delete(m.id);
    return (err as Error).message;
  }
}

/** Ports, closes and balancer changes the agent sent together; answered once every port in it is served or closed. */
function onBatch(m: Extract<ToWorker, { t: 'batch' }>): void {
  const served: Array<Promise<readonly [ProxySocketKey, string] | undefined>> = [];
  for (const item of m.messages) {
    if (item.t === 'bind') {
      lastPortMs = performance.now();
      served.push(serve(item, { reusePort: true }).then((error) => (error === undefined ? undefined : ([item.spn, error] as const))));
    } else if (item.t === 'close') {
      served.push(
        onClose(item.id).then(
          () => undefined,
          () => undefined,
        ),
      );
    } else if (item.t === 'udp-socket') {
      lastPortMs = performance.now();
      hostUdpSocket(item);
    } else {
      onMessage(item, undefined);
    }
  }
  const { seq } = m;
  if (seq === undefined) return;
  void Promise.all(served).then((results) => {
    const failed = results.filter((r): r is readonly [ProxySocketKey, string] => r !== undefined);
    send({ t: 'batched', seq, ...(failed.length > 0 ? { failed } : {}) });
  });
}

function hostUdpSocket(m: Extract<ToWorker, { t: 'udp-socket' }>): void {
  if (udp.has(m.id)) return;
  udp.set(
    m.id,
    new UdpSessionHost({
      spn: m.spn,
      idleTimeoutMs: m.idleTimeoutMs,
      maxSessions: m.maxSessions,
      budget,
      onClosed: (key, failedEndpoint) => send({ t: 'udp-closed', id: m.id, key, ...(failedEndpoint !== undefined ? { failedEndpoint } : {}) }),
      onStray: (listenIndex, msg, address, port) => send({ t: 'udp-stray', id: m.id, listenIndex, address, port, data: msg.toString('base64') }),
    }),
  );
}

async function onClose(id: number): Promise<void> {
  const host = udp.get(id);
  if (host !== undefined) {
    udp.delete(id);
    host.close();
    return;
  }
  const socket = open.get(id);
  if (socket === undefined) return;
  open.delete(id);
  await socket.close();
  if (socket.stats.active > 0) closed.set(id, socket);
}

function onMessage(m: ToWorker, handle: object | undefined): void {
  if (m.t === 'listen' || m.t === 'bind' || m.t === 'udp-socket') lastPortMs = performance.now();
  switch (m.t) {
    case 'init':
      configureLogging(m.logLevel, m.logFormat);
      // Every line of this process says which worker wrote it (the agent process has none).
      rootLogger.defaultMeta = { worker: m.worker };
      log.info('worker started', { worker: m.worker, pid: process.pid });
      send({ t: 'ready' });
      return;
    case 'balancer':
      applyBalancerOps(balancer, m.ops);
      return;
    case 'listen':
      void onListen(m, handle);
      return;
    case 'batch':
      onBatch(m);
      return;
    case 'bind':
      void serve(m, { reusePort: true }).then((error) => send({ t: 'listening', id: m.id, ...(error !== undefined ? { error } : {}) }));
      return;
    case 'udp-socket':
      hostUdpSocket(m);
      send({ t: 'listening', id: m.id });
      return;
    case 'tcp-idle-timeout':
      open.get(m.id)?.setIdleTimeout(m.idleTimeoutMs);
      closed.get(m.id)?.setIdleTimeout(m.idleTimeoutMs);
      break;
    case 'tcp-connection-policy':
      open.get(m.id)?.setConnectionPolicy(m.policy);
      closed.get(m.id)?.setConnectionPolicy(m.policy);
      break;
    case 'udp-open':
      udp.get(m.id)?.open(m.request, Buffer.from(m.data, 'base64'));
      return;
    case 'udp-forward':
      udp.get(m.id)?.forward(m.key, Buffer.from(m.data, 'base64'));
      return;
    case 'close': {
      const { seq } = m;
      void onClose(m.id).finally(() => {
        if (seq !== undefined) send({ t: 'done', seq });
      });
      return;
    }
    case 'destroy':
      udp.get(m.id)?.close();
      udp.delete(m.id);
      (open.get(m.id) ?? closed.get(m.id))?.destroy();
      open.delete(m.id);
      closed.delete(m.id);
      return;
    case 'stats': {
      for (const [id, socket] of closed) if (socket.stats.active === 0) closed.delete(id);
      const sockets = [...open, ...closed, ...udp].map(([id, socket]) => [id, snapshotOf(socket.stats)] as const);
      send({ t: 'stats', seq: m.seq, sockets });
      return;
    }
  }
}

process.on('message', (m: ToWorker, handle: object | undefined) => onMessage(m, handle));
// The agent process decides when to stop: a Ctrl-C reaches the whole process group, and this
// worker must keep serving while the agent drains.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
// The agent process is gone (or let go of this worker): nothing here may outlive it.
process.on('disconnect', () => {
  for (const socket of [...open.values(), ...closed.values()]) socket.destroy();
  for (const host of udp.values()) host.close();
  process.exit(0);
});
