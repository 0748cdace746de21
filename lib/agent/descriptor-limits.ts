import type { Config } from '../config/config.js';
import type { Logger } from '../log.js';
import { DescriptorBudget, FALLBACK_NOFILE } from '../proxy/descriptor-budget.js';

/** The data path's share of the open-file limit, and the UDP session cap that follows from it. */
export interface DescriptorLimits {
  readonly budget: DescriptorBudget;
  /** --udp-max-sessions when given, else derived from the budget. */
  readonly udpMaxSessions: number;
}

/**
 * Reads this process's open-file limit, derives the descriptor budget and the default UDP session
 * cap from it, and says so in one line (a warning, too, when --udp-max-sessions asks for more
 * sessions than the budget holds: it still wins, and the budget refuses the excess). Every worker
 * process derives its own budget from the same inherited limit.
 */
export function descriptorLimits(config: Pick<Config, 'udpMaxSessions' | 'workers'>, log: Logger, budget = new DescriptorBudget()): DescriptorLimits {
  const derived = budget.udpSessionCap();
  const udpMaxSessions = config.udpMaxSessions > 0 ? config.udpMaxSessions : derived;
  log.info('descriptor budget', {
    openFileLimit: budget.limit,
    source: budget.measured ? '/proc/self/limits' : `assumed (${FALLBACK_NOFILE}, cannot read /proc/self/limits)`,
    headroom: budget.headroom,
    budget: budget.size,
    tcpConnections: Math.floor(budget.size / 2),
    udpMaxSessions,
    udpMaxSessionsFrom: config.udpMaxSessions > 0 ? '--udp-max-sessions' : 'open-file limit',
    perProcess: config.workers > 1 ? `each of ${config.workers} processes` : 'this process',
  });
  if (config.udpMaxSessions > derived) {
    log.warn('--udp-max-sessions is above what the descriptor budget holds: new sessions past it are refused', {
      udpMaxSessions: config.udpMaxSessions,
      budgetSessions: derived,
      openFileLimit: budget.limit,
    });
  }
  return { budget, udpMaxSessions };
}
