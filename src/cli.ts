#!/usr/bin/env node
// Entry point: read configuration once, start one node, stop gracefully on SIGTERM/SIGINT.
import { loadConfigWithNotes, ConfigError } from './config/load.js';
import { createLogger } from './log.js';
import { startNode, StartError } from './node.js';

async function main(): Promise<void> {
  let config;
  let ignored: string[];
  try {
    ({ config, ignored } = loadConfigWithNotes(process.argv.slice(2), process.env));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ripple: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  if (ignored.length) log.warn({ ignored }, 'Soketi config file: these settings have no meaning here and were ignored');
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));

  let node;
  try {
    node = await startNode(config, log);
  } catch (err) {
    if (err instanceof StartError) {
      process.stderr.write(`ripple: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  if (config.apps.length === 1) {
    const app = config.apps[0];
    // The built-in development app's credentials are printed so a new user can point an SDK at it at
    // once; a secret the operator chose is never printed or logged.
    const builtIn = app.secret === 'app-secret' && !process.env.APP_SECRET;
    process.stdout.write(
      `ripple listening on ${config.host}:${node.port}  app_id=${app.id} key=${app.key} secret=${builtIn ? app.secret : '(configured, not shown)'}\n`,
    );
  }

  let exiting = false;
  const shutdown = (signal: string) => {
    if (exiting) return;
    exiting = true;
    log.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      log.error('shutdown deadline passed, exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    node.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

void main();
