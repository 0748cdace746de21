import { logger } from '../log.js';
import { claimNodePort } from './node-port-claim.js';
import type { ProxiedPort } from './proxied-port.js';

const log = logger('agent');

/**
 * Rules modes: a socket with a NodePort holds it (the internal socket of a split port has none),
 * so that no other process takes the port the rules send to the proxy.
 */
export function needsNodePort(st: ProxiedPort, redirect: boolean): boolean {
  return redirect && st.port.nodePort > 0 && st.scope !== 'internal';
}

/**
 * Holds a socket's NodePort (the family's any-address). A failure is kept on the port (its rules
 * then leave the NodePort out), logged once per distinct message, and tried again at every sync.
 */
export async function holdNodePort(st: ProxiedPort): Promise<void> {
  try {
    st.claim = await claimNodePort(st.port.protocol as 'TCP' | 'UDP', st.port.nodePort, st.family === 'IPv6' ? '::' : '0.0.0.0');
    st.claimError = undefined;
  } catch (err) {
    if (st.claimError?.message !== (err as Error).message) {
      log.error('cannot hold node port', { service: st.spn, protocol: st.port.protocol, nodePort: st.port.nodePort, error: (err as Error).message });
    }
    st.claimError = err as Error;
  }
}
