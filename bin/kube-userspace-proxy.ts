#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Agent } from '../lib/agent/agent.js';
import { parseFlags, usage } from '../lib/config/flags.js';
import { InvalidConfigError, ProxyError } from '../lib/errors.js';
import { configureLogging, logger } from '../lib/log.js';
import { redirectFor } from '../lib/agent/redirect-for.js';
import { serviceSourceFor } from '../lib/agent/service-source-for.js';
import { cleanupLeftovers } from '../lib/rules/cleanup.js';

const PROGRAM = 'kube-userspace-proxy';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseFlags(argv, { isTTY: Boolean(process.stderr.isTTY) });
  } catch (err) {
    if (err instanceof InvalidConfigError) {
      for (const p of err.problems) process.stderr.write(`${PROGRAM}: ${p}\n`);
      process.stderr.write(`\n${usage(PROGRAM)}\n`);
      return 2;
    }
    throw err;
  }
  if (parsed.action === 'help') {
    process.stdout.write(`${usage(PROGRAM)}\n`);
    return 0;
  }
  if (parsed.action === 'version') {
    process.stdout.write(`${PROGRAM} ${version()}\n`);
    return 0;
  }
  const { config } = parsed;
  configureLogging(config.logLevel, config.logFormat);
  const log = logger('main');
  log.info('kube-userspace-proxy starting', { version: version(), redirect: config.redirect, bindAddress: config.bindAddress });

  if (config.cleanup) {
    try {
      const { removed } = await cleanupLeftovers();
      log.info('cleanup done', { removed: removed.length, what: removed.join(',') });
      return 0;
    } catch (err) {
      log.error('cleanup failed', { error: (err as Error).message });
      return 1;
    }
  }

  let agent: Agent;
  try {
    const nodeName = config.hostnameOverride ?? os.hostname().toLowerCase();
    const source = serviceSourceFor(config);
    const { rules, assigner, allocator } = await redirectFor(config);
    agent = new Agent({ config: { ...config, nodeName }, source, rules, assigner, allocator });
  } catch (err) {
    log.error('start failed', { error: err instanceof ProxyError ? err.message : String(err) });
    return 1;
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn('second signal: exiting now', { signal });
      process.exit(1);
    }
    stopping = true;
    log.info('stopping', { signal });
    agent
      .close()
      .catch((err: unknown) => log.error('close failed', { error: (err as Error).message }))
      .finally(() => {
        agent.destroy();
        log.info('stopped');
        process.exit(0);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  try {
    await agent.start();
  } catch (err) {
    const message = err instanceof ProxyError ? err.message : String((err as Error)?.stack ?? err);
    log.error('start failed', { error: message });
    agent.destroy();
    return 1;
  }
  return -1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${PROGRAM}: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
