import { Writable } from 'node:stream';
import test from 'ava';
import winston from 'winston';
import { logger, rootLogger } from '../lib/log.js';

for (const transport of rootLogger.transports) transport.silent = process.env['KUP_TEST_LOGS'] !== '1';

/** Everything a transport at `level` receives, and a way to wait for a message to arrive. */
function capture(level?: string): { lines: Array<Record<string, unknown>>; arrived(message: string): Promise<void>; close(): void } {
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ message: string; resolve: () => void }> = [];
  const transport = new winston.transports.Stream({
    ...(level ? { level } : {}),
    format: winston.format.json(),
    stream: new Writable({
      write(chunk: Buffer, _enc, done) {
        const line = JSON.parse(chunk.toString()) as Record<string, unknown>;
        lines.push(line);
        for (const w of waiters.filter((w) => w.message === line['message'])) w.resolve();
        done();
      },
    }),
  });
  rootLogger.add(transport);
  return {
    lines,
    arrived: (message) => (lines.some((l) => l['message'] === message) ? Promise.resolve() : new Promise((resolve) => waiters.push({ message, resolve }))),
    close: () => rootLogger.remove(transport),
  };
}

/** Runs fn with the root logger at `level` and a format that records what it formats. */
async function withLevel(level: string, fn: (formatted: string[]) => Promise<void>): Promise<void> {
  const { level: before, format } = rootLogger;
  const formatted: string[] = [];
  rootLogger.level = level;
  rootLogger.format = winston.format((info) => {
    formatted.push(String(info.message));
    return info;
  })();
  try {
    await fn(formatted);
  } finally {
    rootLogger.level = before;
    rootLogger.format = format;
  }
}

test.serial('a message below the level is dropped before it is formatted', async (t) => {
  const out = capture();
  t.teardown(out.close);
  await withLevel('warn', async (formatted) => {
    const log = logger('spec');
    log.info('quiet info', { n: 1 });
    log.debug('quiet debug');
    log.log('info', 'quiet log call');
    log.warn('loud warn', { n: 2 });
    await out.arrived('loud warn');
    t.deepEqual(formatted, ['loud warn']);
    t.deepEqual(
      out.lines.map((l) => [l['message'], l['component'], l['n']]),
      [['loud warn', 'spec', 2]],
    );
  });
});

test.serial('a transport with a lower level than the logger still gets its messages', async (t) => {
  const out = capture('debug');
  t.teardown(out.close);
  await withLevel('info', async () => {
    logger('spec').debug('for the debug transport', { n: 3 });
    await out.arrived('for the debug transport');
    t.like(out.lines[0], { message: 'for the debug transport', component: 'spec', level: 'debug', n: 3 });
  });
});

test('one logger per component, shared by everything that asks', (t) => {
  t.is(logger('spec'), logger('spec'));
  t.not(logger('spec'), logger('other'));
});
