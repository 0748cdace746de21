import type { DescriptorBudget } from '../descriptor-budget.js';
import type { EndpointBackoff } from '../endpoint-backoff.js';
import type { EndpointConnector } from '../endpoint-connector.js';
import type { TcpProxySocketOptions } from './tcp-proxy-socket-options.js';

/** What a port's connections are made from on first use. */
export interface ConnectionOptions {
  readonly backoff: EndpointBackoff;
  readonly dialTimeoutsMs: readonly number[];
  readonly budget: DescriptorBudget | undefined;
  readonly connector: EndpointConnector | undefined;
  readonly random: (() => number) | undefined;
}

/** The last ConnectionOptions made: the ports of one agent all have the same, so they share one (64 bytes each). */
let lastConnectionOptions: ConnectionOptions | undefined;

/** A port's ConnectionOptions: the last one made when it is the same, else a new one. */
export function connectionOptionsOf(options: TcpProxySocketOptions, dialTimeoutsMs: readonly number[]): ConnectionOptions {
  const last = lastConnectionOptions;
  if (
    last !== undefined &&
    last.backoff === options.backoff &&
    last.dialTimeoutsMs === dialTimeoutsMs &&
    last.budget === options.budget &&
    last.connector === options.connector &&
    last.random === options.random
  ) {
    return last;
  }
  const made: ConnectionOptions = { backoff: options.backoff, dialTimeoutsMs, budget: options.budget, connector: options.connector, random: options.random };
  lastConnectionOptions = made;
  return made;
}
