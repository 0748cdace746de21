import { Writable } from 'node:stream';
import winston from 'winston';
import { rootLogger } from '../../lib/log.js';

/** One captured log entry: the message and its structured fields. */
export type LogEntry = Record<string, unknown> & { message: string; level: string };

/**
 * Captures this process's log entries (as parsed JSON) from now until close(), and silences the
 * console transports unless KUP_TEST_LOGS=1.
 */
export function captureLogs(): { readonly entries: LogEntry[]; close(): void } {
  const entries: LogEntry[] = [];
  for (const transport of rootLogger.transports) transport.silent = process.env['KUP_TEST_LOGS'] !== '1';
  const capture = new winston.transports.Stream({
    format: winston.format.json(),
    stream: new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line !== '') entries.push(JSON.parse(line) as LogEntry);
        done();
      },
    }),
  });
  rootLogger.add(capture);
  return { entries, close: () => void rootLogger.remove(capture) };
}

/**
 * Captures this process's log lines as its logger formats them (one string each, without the line
 * end) from now until close(), and silences the console transports unless KUP_TEST_LOGS=1.
 */
export function captureLogLines(): { readonly lines: string[]; close(): void } {
  const lines: string[] = [];
  for (const transport of rootLogger.transports) transport.silent = process.env['KUP_TEST_LOGS'] !== '1';
  const capture = new winston.transports.Stream({
    stream: new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString().trimEnd());
        done();
      },
    }),
  });
  rootLogger.add(capture);
  return { lines, close: () => void rootLogger.remove(capture) };
}
