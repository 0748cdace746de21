import type { Agent } from '../agent/agent.js';

/**
 * What the health and metrics servers read of the agent: the Agent is one; tests may pass a
 * double. Every method is a cheap, synchronous read, called at request or scrape time only, except
 * refreshStats, which first fetches counters kept in other processes (optional for doubles, as is
 * syncStatus: without it the kubeproxy_* change and sync-request metrics stay at 0; renderRules:
 * without it the live page shows no rules; and portCounters: without it /metrics reads status()).
 */
export type AgentView = Pick<Agent, 'status' | 'health' | 'counts' | 'redirectMode' | 'sourceHealth'> & Partial<Pick<Agent, 'refreshStats' | 'syncStatus' | 'renderRules' | 'portCounters'>>;
