import type { LoadBalancer } from '../../balancer/load-balancer.js';
import type { Logger } from '../../log.js';
import type { ProxySocketKey } from '../../model/service-port-name.js';
import type { DescriptorBudget } from '../descriptor-budget.js';
import type { EndpointBackoff } from '../endpoint-backoff.js';
import type { EndpointConnector } from '../endpoint-connector.js';
import type { ListenAddress } from '../proxy-socket.js';
import type { TcpConnectionPolicy } from './connection-policy.js';

/** What a TcpProxySocket is made with: one service port's listeners, balancer and connection settings. */
export interface TcpProxySocketOptions {
  readonly spn: ProxySocketKey;
  /** One listener per address; port 0 lets the kernel choose. */
  readonly listen: readonly ListenAddress[];
  readonly balancer: LoadBalancer;
  /** Shared by every proxy socket of the process. */
  readonly backoff: EndpointBackoff;
  /** One connect timeout per attempt; default 250, 500, 1000, 2000 ms as the legacy proxier. */
  readonly dialTimeoutsMs?: readonly number[];
  readonly log?: Logger;
  /**
   * Listening handles another process opened (one per listen address, see listeningHandles()):
   * this socket accepts on them too instead of binding its own; `listen` is then what they are
   * bound to, for logs and addresses().
   */
  readonly handles?: readonly object[];
  /**
   * Bind with SO_REUSEPORT (the native addon's listeners, or Node >= 22.12; see lib/workers/tcp-listener-mode.ts): other processes
   * may bind the same address and port with it too, each with an accept queue of its own.
   */
  readonly reusePort?: boolean;
  /**
   * The process's descriptor budget (shared by every proxy socket of the process): a connection
   * takes two (client and upstream) for its life, and one that does not fit is refused at once.
   * Without it, connections are limited only by the kernel.
   */
  readonly budget?: DescriptorBudget;
  /** Close a connection with no byte either way for this long; 0 (the default) = never. See setIdleTimeout(). */
  readonly idleTimeoutMs?: number;
  /** Reach endpoints through this instead of their IPs (--dial-via port-forward). */
  readonly connector?: EndpointConnector | undefined;
  /** The Service's wishes for the connections: PROXY protocol header, max connection age. See setConnectionPolicy(). */
  readonly policy?: TcpConnectionPolicy;
  /** The max connection age's jitter, [0, 1); default Math.random (tests inject a seeded one). */
  readonly random?: () => number;
  /**
   * 'native' (the default): established connections are relayed by the native TCP data path
   * (NativeForwarder, lib/internals/tcp-native.ts), where this installation has it, and otherwise
   * as with 'handles': forwarded on libuv's TCP handles directly (HandleForwarder), where this Node
   * allows it and no connector is given; 'net': always on net.Socket (TcpForwarder).
   */
  readonly dataPath?: TcpDataPath;
  /**
   * On the 'native' data path, the addon accepts the clients too, on listening sockets of its own
   * (lib/internals/tcp-native-listener.ts), where this socket binds its addresses itself (IP
   * literals, no handles from another process). Default true; false keeps libuv's listeners, whose
   * handles listeningHandles() can give to other processes.
   */
  readonly nativeAccept?: boolean;
}

export type TcpDataPath = 'native' | 'handles' | 'net';
