import { Writable } from 'node:stream';
import test from 'ava';
import winston from 'winston';
import { LEVEL_CHECK_WORKS, levelCheckedChild } from '../../lib/internals/level-checked-logger.js';

/** A root logger at `level` of its own, recording what it formats and what reaches its transport. */
function rootAt(level: string): { root: winston.Logger; formatted: string[]; written: Array<Record<string, unknown>> } {
  const formatted: string[] = [];
  const written: Array<Record<string, unknown>> = [];
  const root = winston.createLogger({
    level,
    levels: { error: 0, warn: 1, info: 2, debug: 3 },
    format: winston.format.combine(
      winston.format((info) => {
        formatted.push(String(info.message));
        return info;
      })(),
      winston.format.json(),
    ),
    transports: [
      new winston.transports.Stream({
        stream: new Writable({
          write(chunk: Buffer, _encoding, done) {
            written.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
            done();
          },
        }),
      }),
    ],
  });
  return { root, formatted, written };
}

test(`the probe finds winston's write() path on Node ${process.versions.node}`, (t) => {
  // The winston this project installs routes every log method through write(): if an upgrade
  // changes that, this fails and says so instead of start-up silently getting slower.
  t.true(LEVEL_CHECK_WORKS);
});

test('a child drops messages below the root level unformatted and writes the rest with its fields', (t) => {
  const { root, formatted, written } = rootAt('warn');
  t.teardown(() => root.close());
  const log = levelCheckedChild(root, { component: 'spec' });
  log.info('quiet info', { n: 1 });
  log.debug('quiet debug');
  log.log('info', 'quiet log call');
  log.warn('loud warn', { n: 2 });
  log.error('loud error');
  t.deepEqual(formatted, ['loud warn', 'loud error']);
  t.deepEqual(
    written.map((l) => [l['level'], l['message'], l['component'], l['n']]),
    [
      ['warn', 'loud warn', 'spec', 2],
      ['error', 'loud error', 'spec', undefined],
    ],
  );
});

test('a child follows the root level when it changes later', (t) => {
  const { root, formatted } = rootAt('warn');
  t.teardown(() => root.close());
  const log = levelCheckedChild(root, { component: 'spec' });
  log.debug('before');
  root.level = 'debug';
  log.debug('after');
  t.true(log.isLevelEnabled('debug'));
  t.deepEqual(formatted, ['after']);
});

test("a child's level checks follow a transport's level and a transport added later", (t) => {
  const { root } = rootAt('warn');
  t.teardown(() => root.close());
  const log = levelCheckedChild(root, { component: 'spec' });
  t.false(log.isInfoEnabled());
  t.false(log.isDebugEnabled());
  t.true(log.isWarnEnabled());
  root.transports[0]!.level = 'error';
  t.false(log.isWarnEnabled());
  t.true(log.isErrorEnabled());
  const debugTransport = new winston.transports.Stream({ level: 'debug', stream: new Writable({ write: (_chunk, _encoding, done) => done() }) });
  root.add(debugTransport);
  t.true(log.isDebugEnabled());
  t.true(log.isLevelEnabled('info'));
  root.remove(debugTransport);
  t.false(log.isInfoEnabled());
  root.level = 'info';
  root.transports[0]!.level = undefined as unknown as string;
  t.true(log.isInfoEnabled());
  t.false(log.isDebugEnabled());
});
