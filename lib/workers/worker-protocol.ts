import type { AffinityPolicy } from '../balancer/load-balancer.js';
import type { LogFormat, LogLevel } from '../log.js';
import type { Endpoint } from '../model/endpoint.js';
import type { ServicePortName } from '../model/service-port-name.js';
import type { ListenAddress } from '../proxy/proxy-socket.js';
import type { StatsSnapshot } from './stats-snapshot.js';

/**
 * Messages between the agent process and its data-path worker processes (child_process IPC,
 * JSON). The channel keeps order, including across messages that carry a handle, so a worker sees
 * balancer changes and listeners in the order the agent made them.
 */

/** A change of the balancer's state, replayed in every worker's own balancer. */
export type BalancerOp =
  | { readonly op: 'new'; readonly spn: ServicePortName; readonly affinity: AffinityPolicy }
  | { readonly op: 'endpoints'; readonly spn: ServicePortName; readonly endpoints: readonly Endpoint[] }
  | { readonly op: 'delete'; readonly spn: ServicePortName };

export type ToWorker =
  | { readonly t: 'init'; readonly logLevel: LogLevel; readonly logFormat: LogFormat; readonly worker: number }
  | { readonly t: 'balancer'; readonly ops: readonly BalancerOp[] }
  /**
   * One listening handle of shared socket `id` (sent with the message): index of count. The worker
   * starts accepting once it has all of them.
   */
  | { readonly t: 'listen'; readonly id: number; readonly spn: ServicePortName; readonly index: number; readonly count: number; readonly addresses: readonly ListenAddress[] }
  /** Stop accepting on socket `id`; its connections finish by themselves. Answered with 'done'. */
  | { readonly t: 'close'; readonly id: number; readonly seq: number }
  /** Reset every connection of socket `id` and forget it. */
  | { readonly t: 'destroy'; readonly id: number }
  /** Answered with 'stats'. */
  | { readonly t: 'stats'; readonly seq: number };

export type FromWorker =
  | { readonly t: 'ready' }
  /** The listeners of socket `id` are accepting (or could not be: error). */
  | { readonly t: 'listening'; readonly id: number; readonly error?: string }
  | { readonly t: 'done'; readonly seq: number }
  /** Counters of every socket the worker still has, open or closed with connections left. */
  | { readonly t: 'stats'; readonly seq: number; readonly sockets: ReadonlyArray<readonly [number, StatsSnapshot]> };
