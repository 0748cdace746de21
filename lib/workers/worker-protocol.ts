import type { AffinityPolicy, SchedulingPolicy } from '../balancer/load-balancer.js';
import type { LogFormat, LogLevel } from '../log.js';
import type { Endpoint } from '../model/endpoint.js';
import type { ProxySocketKey } from '../model/service-port-name.js';
import type { ListenAddress } from '../proxy/proxy-socket.js';
import type { TcpConnectionPolicy } from '../proxy/tcp/connection-policy.js';
import type { RemoteSessionRequest } from '../proxy/udp/udp-session-placement.js';
import type { StatsSnapshot } from './stats-snapshot.js';

/**
 * Messages between the agent process and its data-path worker processes (child_process IPC,
 * JSON). The channel keeps order, including across messages that carry a handle, so a worker sees
 * balancer changes and listeners in the order the agent made them.
 */

/** A change of the balancer's state, replayed in every worker's own balancer. */
export type BalancerOp =
  | { readonly op: 'new'; readonly spn: ProxySocketKey; readonly affinity: AffinityPolicy; readonly scheduling?: SchedulingPolicy }
  | { readonly op: 'endpoints'; readonly spn: ProxySocketKey; readonly endpoints: readonly Endpoint[] }
  | { readonly op: 'delete'; readonly spn: ProxySocketKey };

export type ToWorker =
  | { readonly t: 'init'; readonly logLevel: LogLevel; readonly logFormat: LogFormat; readonly worker: number }
  | { readonly t: 'balancer'; readonly ops: readonly BalancerOp[] }
  /**
   * Messages without a handle, in order, sent as one. With `seq` it is answered with 'batched' once
   * the worker has served every message in it (bound its ports).
   */
  | { readonly t: 'batch'; readonly seq?: number; readonly messages: readonly ToWorker[] }
  /**
   * One listening handle of shared socket `id` (sent with the message): index of count. The worker
   * starts accepting once it has all of them.
   */
  | {
      readonly t: 'listen';
      readonly id: number;
      readonly spn: ProxySocketKey;
      readonly index: number;
      readonly count: number;
      readonly addresses: readonly ListenAddress[];
      readonly idleTimeoutMs: number;
      readonly policy: TcpConnectionPolicy;
    }
  /**
   * Bind the addresses of shared socket `id` (their ports as bound by the agent process) with
   * SO_REUSEPORT and accept on them; answered with 'listening'.
   */
  | { readonly t: 'bind'; readonly id: number; readonly spn: ProxySocketKey; readonly addresses: readonly ListenAddress[]; readonly idleTimeoutMs: number; readonly policy: TcpConnectionPolicy }
  /** TCP socket `id`'s idle timeout changed (ms, 0 = never). */
  | { readonly t: 'tcp-idle-timeout'; readonly id: number; readonly idleTimeoutMs: number }
  /** TCP socket `id`'s connection policy changed (PROXY protocol header, max connection age). */
  | { readonly t: 'tcp-connection-policy'; readonly id: number; readonly policy: TcpConnectionPolicy }
  /** UDP socket `id` may place sessions here; answered with 'listening'. */
  | { readonly t: 'udp-socket'; readonly id: number; readonly spn: ProxySocketKey; readonly idleTimeoutMs: number; readonly maxSessions: number }
  /** A new session of UDP socket `id`, with its first datagram (base64). */
  | { readonly t: 'udp-open'; readonly id: number; readonly request: RemoteSessionRequest; readonly data: string }
  /** A datagram of a session here that reached the agent's listening socket (base64). */
  | { readonly t: 'udp-forward'; readonly id: number; readonly key: string; readonly data: string }
  /**
   * Stop accepting on socket `id` (TCP: its connections finish by themselves; UDP: its sessions
   * close). Answered with 'done' when it has a `seq`; in a batch, the batch's answer covers it.
   */
  | { readonly t: 'close'; readonly id: number; readonly seq?: number }
  /** Reset every connection of socket `id` and forget it. */
  | { readonly t: 'destroy'; readonly id: number }
  /** Answered with 'stats'. */
  | { readonly t: 'stats'; readonly seq: number };

export type FromWorker =
  | { readonly t: 'ready' }
  /** The listeners of socket `id` are accepting (or could not be: error). */
  | { readonly t: 'listening'; readonly id: number; readonly error?: string }
  | { readonly t: 'done'; readonly seq: number }
  /** Batch `seq` is served; `failed`: the services whose ports could not be bound, with the error. */
  | { readonly t: 'batched'; readonly seq: number; readonly failed?: ReadonlyArray<readonly [ProxySocketKey, string]> }
  /** A UDP session placed here ended (failedEndpoint: on an upstream error). */
  | { readonly t: 'udp-closed'; readonly id: number; readonly key: string; readonly failedEndpoint?: string }
  /** Another client's datagram reached a session's reply socket before it was connected (base64). */
  | { readonly t: 'udp-stray'; readonly id: number; readonly listenIndex: number; readonly address: string; readonly port: number; readonly data: string }
  /** Counters of every socket the worker still has, open or closed with connections left. */
  | { readonly t: 'stats'; readonly seq: number; readonly sockets: ReadonlyArray<readonly [number, StatsSnapshot]> };
