import type { SchedulerName } from '../model/scheduler-annotation.js';
import { LeastConnectionScheduler } from './least-connection-scheduler.js';
import { MaglevScheduler } from './maglev-scheduler.js';
import { NeverQueueScheduler } from './never-queue-scheduler.js';
import { RandomScheduler } from './random-scheduler.js';
import { RoundRobinScheduler } from './round-robin-scheduler.js';
import type { SchedulerFactory } from './scheduler.js';
import { ShortestExpectedDelayScheduler } from './shortest-expected-delay-scheduler.js';
import { SourceHashScheduler } from './source-hash-scheduler.js';

const FACTORIES: Readonly<Record<SchedulerName, SchedulerFactory>> = {
  rr: (eps, w) => new RoundRobinScheduler(eps, w),
  random: (eps, w, random) => new RandomScheduler(eps, w, random),
  lc: () => new LeastConnectionScheduler(),
  sed: (eps, w) => new ShortestExpectedDelayScheduler(eps, w),
  nq: (eps, w) => new NeverQueueScheduler(eps, w),
  sh: (eps, w) => new SourceHashScheduler(eps, w),
  mh: (eps, w) => new MaglevScheduler(eps, w),
};

/** The factory of a scheduler by name. */
export function schedulerFor(name: SchedulerName): SchedulerFactory {
  return FACTORIES[name];
}

/** The schedulers that use endpoint weights; the others treat every endpoint alike. */
export const WEIGHTED_SCHEDULERS: readonly SchedulerName[] = ['rr', 'random', 'sed', 'nq', 'sh', 'mh'];

/** The schedulers whose pick is a function of the client's address. */
export const CLIENT_HASHING_SCHEDULERS: readonly SchedulerName[] = ['sh', 'mh'];
