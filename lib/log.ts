import winston from 'winston';
import { levelCheckedChild } from './internals/level-checked-logger.js';

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
  if (!log) loggers.set(component, (log = levelCheckedChild(rootLogger, { component })));
  return log;
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
