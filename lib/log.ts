import winston from 'winston';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type LogFormat = 'text' | 'json';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

/**
 * The root logger. Messages are constant strings; everything variable goes in structured fields,
 * so that JSON logs can be filtered and text logs stay greppable.
 */
export const rootLogger = winston.createLogger({
  level: process.env['KUP_LOG_LEVEL'] ?? 'info',
  levels: { error: 0, warn: 1, info: 2, debug: 3 },
  format: textFormat(),
  transports: [new winston.transports.Stream({ stream: process.stderr })],
});

export type Logger = winston.Logger;

const loggers = new Map<string, Logger>();

/** A logger for one part of the program: every line carries `component`. One per component, shared. */
export function logger(component: string): Logger {
  // Every proxy socket asks for one: 10,000 service ports need not make 10,000 loggers.
  let log = loggers.get(component);
  if (!log) loggers.set(component, (log = componentLogger(component)));
  return log;
}

function componentLogger(component: string): Logger {
  const child = rootLogger.child({ component });
  // winston formats every message (timestamp, text or JSON) before its transports drop those
  // below their level; a start-up with 10,000 service ports spent about 7% of its CPU on info
  // lines nobody would see. Asking first keeps a message that is not logged almost free.
  // The level methods ask too: winston's own path builds an info object and merges the fields
  // (about 8% of a 10,000-port sync, for one 'endpoints changed' line per port) before write().
  const methods: PropertyDescriptorMap = {
    write: {
      value(info: winston.Logform.TransformableInfo): boolean {
        return rootLogger.isLevelEnabled(info.level) ? child.write(info) : true;
      },
    },
  };
  for (const level of LOG_LEVELS) {
    const write = child[level].bind(child) as (...args: unknown[]) => Logger;
    methods[level] = {
      value(this: Logger, ...args: unknown[]): Logger {
        return rootLogger.isLevelEnabled(level) ? write(...args) : this;
      },
    };
  }
  return Object.create(child, methods) as Logger;
}

export function configureLogging(level: LogLevel, format: LogFormat): void {
  rootLogger.level = level;
  rootLogger.format = format === 'json' ? jsonFormat() : textFormat();
}

function jsonFormat(): winston.Logform.Format {
  return winston.format.combine(winston.format.timestamp(), winston.format.json());
}

function textFormat(): winston.Logform.Format {
  return winston.format.combine(
    winston.format.timestamp(),
    winston.format.printf((info) => {
      const { level, message, timestamp, component, ...fields } = info as Record<string, unknown>;
      const rest = Object.entries(fields)
        .filter(([k]) => typeof k === 'string')
        .map(([k, v]) => `${k}=${formatValue(v)}`)
        .join(' ');
      const head = `${String(timestamp)} ${String(level).toUpperCase().padEnd(5)} [${String(component ?? 'main')}] ${String(message)}`;
      return rest ? `${head} ${rest}` : head;
    }),
  );
}

function formatValue(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}
