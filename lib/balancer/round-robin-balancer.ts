/**
 * The balancer under its earlier name: with no scheduling given, a SchedulingBalancer is the
 * legacy userspace proxier's round robin with ClientIP affinity.
 */
export { SchedulingBalancer as RoundRobinBalancer, DEFAULT_MAX_AFFINITY_ENTRIES } from './scheduling-balancer.js';
export type { SchedulingBalancerOptions as RoundRobinBalancerOptions } from './scheduling-balancer.js';
