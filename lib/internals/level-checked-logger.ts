import { Writable } from 'node:stream';
import winston from 'winston';

/**
 * A winston child logger that drops a message below the root logger's level before formatting it.
 *
 * winston formats every message (timestamp, text or JSON) before its transports drop those below
 * their level; a start-up with 10,000 service ports spent about 7% of its CPU on info lines nobody
 * would see. Every log method of a winston 3 logger ends in the logger's own write(info), which is
 * not documented as the one way in: the child here overrides write() to ask the root first. The
 * probe checks that path once on a throwaway logger; where it does not hold, children are plain
 * winston children (the same lines, formatted before they are dropped).
 */
export function levelCheckedChild(root: winston.Logger, fields: Record<string, unknown>): winston.Logger {
  const child = root.child(fields);
  if (!LEVEL_CHECK_WORKS) return child;
  return withLevelCheck(root, child);
}

const LEVELS = ['error', 'warn', 'info', 'debug'] as const;

function withLevelCheck(root: winston.Logger, child: winston.Logger): winston.Logger {
  const enabled = enabledLevels(root);
  const methods: PropertyDescriptorMap = {
    write: {
      value(info: winston.Logform.TransformableInfo): boolean {
        return enabled(info.level) ? child.write(info) : true;
      },
    },
    isLevelEnabled: { value: enabled },
  };
  // The level methods ask too: winston's own path builds an info object and merges the fields
  // (about 8% of a 10,000-port sync, for one 'endpoints changed' line per port) before write().
  for (const level of LEVELS) {
    const write = child[level].bind(child) as (...args: unknown[]) => winston.Logger;
    methods[level] = {
      value(this: winston.Logger, ...args: unknown[]): winston.Logger {
        return enabled(level) ? write(...args) : this;
      },
    };
    methods[`is${level[0]!.toUpperCase()}${level.slice(1)}Enabled`] = { value: () => enabled(level) };
  }
  return Object.create(child, methods) as winston.Logger;
}

/**
 * root.isLevelEnabled(level), remembered until the root's level or a transport's changes (both
 * are compared at every call; a transport added or removed changes the list's length).
 * winston's own check, reached through a child, took about 2 µs a call: a first sync with 10,000
 * service ports asks for every port, in the agent and in the balancer.
 */
function enabledLevels(root: winston.Logger): (level: string) => boolean {
  let rootLevel: string | undefined;
  let transportLevels: Array<string | undefined> = [];
  const answers = new Map<string, boolean>();
  return (level: string): boolean => {
    const transports = root.transports;
    let same = root.level === rootLevel && transports.length === transportLevels.length;
    for (let i = 0; same && i < transports.length; i++) same = transports[i]!.level === transportLevels[i];
    if (!same) {
      rootLevel = root.level;
      transportLevels = transports.map((t) => t.level);
      answers.clear();
    }
    let answer = answers.get(level);
    if (answer === undefined) answers.set(level, (answer = root.isLevelEnabled(level)));
    return answer;
  };
}

/**
 * Whether messages below the level, through both the level methods and log(), are dropped
 * unformatted while one at the level is formatted: winston formats everything it is given, so
 * anything below the level that is formatted went around the overridden write().
 */
function probe(): boolean {
  try {
    const formatted: string[] = [];
    const root = winston.createLogger({
      level: 'warn',
      levels: { error: 0, warn: 1, info: 2, debug: 3 },
      format: winston.format((info) => {
        formatted.push(String(info.message));
        return info;
      })(),
      transports: [new winston.transports.Stream({ stream: new Writable({ write: (_chunk, _encoding, done) => done() }) })],
    });
    const checked = withLevelCheck(root, root.child({ component: 'probe' }));
    checked.info('below');
    checked.log('debug', 'below');
    checked.warn('at');
    root.close();
    return formatted.length === 1 && formatted[0] === 'at';
  } catch {
    return false;
  }
}

/** Whether levelCheckedChild() adds the check in this winston (false: plain children). */
export const LEVEL_CHECK_WORKS: boolean = probe();
