import type { Logger } from '../log.js';
import type { Agent } from './agent.js';

/**
 * After SIGTERM, how long past --shutdown-grace-period the rest of the shutdown may take before the
 * process exits anyway (code 1): removing rules and service addresses (each iptables call waits up
 * to 5 s for the xtables lock), closing the servers and the worker processes. A shutdown that hangs
 * would otherwise run into the kubelet's SIGKILL at terminationGracePeriodSeconds (45 s in the
 * example DaemonSet, above 30 s + 10 s) with no word of what hung.
 */
export const SHUTDOWN_MARGIN_MS = 10_000;

export interface SignalShutdownOptions {
  readonly agent: Agent;
  readonly gracePeriodMs: number;
  /** What to close once the agent has: the DNS, health and metrics servers. */
  readonly closeRest: () => Promise<void>;
  readonly log: Logger;
}

/**
 * SIGINT and SIGTERM drain the agent, close it and the rest, and exit: 0 when everything closed,
 * 1 when close failed, 1 at the deadline (the grace period plus SHUTDOWN_MARGIN_MS) whatever is
 * still running. A second signal exits at once (1); leftovers are removed at the next start or by
 * --cleanup.
 */
export function exitOnSignals({ agent, gracePeriodMs, closeRest, log }: SignalShutdownOptions): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn('second signal: exiting now', { signal });
      agent.destroy(); // synchronous: removes the hosts block, if any, on the way out
      process.exit(1);
    }
    stopping = true;
    const deadlineMs = gracePeriodMs + SHUTDOWN_MARGIN_MS;
    log.info('stopping', { signal, gracePeriodMs, deadlineMs });
    // Not unref'd: it also keeps the process from exiting 0 while a close step hangs on nothing.
    setTimeout(() => {
      log.error('shutdown deadline passed: exiting now', { deadlineMs });
      agent.destroy();
      process.exit(1);
    }, deadlineMs);
    // Order: stop accepting and remove rules, let established connections finish, then close the
    // rest; health answers 503 (draining) until the process is gone.
    let code = 0;
    agent
      .drain(gracePeriodMs)
      .then(() => agent.close())
      .catch((err: unknown) => {
        code = 1;
        log.error('close failed', { error: (err as Error).message });
      })
      .finally(async () => {
        agent.destroy();
        await closeRest();
        log.info('stopped', { code });
        process.exit(code);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
