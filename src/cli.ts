#!/usr/bin/env node
// Entry point: parse the command line, read configuration once, start one node, stop gracefully on
// SIGTERM, SIGINT or SIGHUP. Exit codes: 0 after --help/--version or a clean stop, 2 for a usage or
// configuration error, 1 when the node cannot start (e.g. its port is taken).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCliArgs, usage, UsageError, type CliArgs } from './config/cli-args.js';
import { loadConfigWithNotes, ConfigError, type LoadedConfig } from './config/load.js';
import { createLogger } from './log.js';

/** The version in package.json: next to src/ in a checkout, two levels up from dist/src/cli.js. */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) return String((JSON.parse(readFileSync(p, 'utf8')) as { version?: string }).version ?? 'unknown');
    dir = dirname(dir);
  }
  return 'unknown';
}

function fail(message: string, code: number, hint = ''): never {
  process.stderr.write(`ripple: ${message}\n${hint}`);
  process.exit(code);
}

async function main(): Promise<void> {
  let args: CliArgs;
  try {
    args = parseCliArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) fail(err.message, 2, "Run 'ripple --help' for usage.\n");
    throw err;
  }
  if (args.command === 'help') {
    process.stdout.write(usage);
    return;
  }
  if (args.command === 'version') {
    process.stdout.write(`ripple ${packageVersion()}\n`);
    return;
  }

  let loaded: LoadedConfig;
  try {
    loaded = loadConfigWithNotes(args, process.env, { dotEnvDir: process.cwd() });
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    throw err;
  }
  const { config } = loaded;
  // Human-readable lines on a terminal, JSON lines for everything else (files, pipes, collectors).
  const log = createLogger(config.logLevel, { pretty: process.stdout.isTTY === true });
  for (const w of loaded.warnings) log.warn(w);
  for (const n of loaded.notices) log.info(n);
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));

  // loaded only now, so --help, --version and configuration errors answer without loading the server
  const { startNode, StartError } = await import('./node.js');
  let node;
  try {
    node = await startNode(config, log);
  } catch (err) {
    // Whatever stops the start (a port taken, the metrics port too) ends the process: never half started.
    if (!(err instanceof StartError)) log.error({ err }, 'start failed');
    fail(err instanceof Error ? err.message : String(err), 1);
  }
  if (config.apps.length === 1) {
    const app = config.apps[0];
    // The built-in development secret is printed so a new user can point an SDK at it at once; a
    // secret the operator chose is never printed or logged.
    process.stdout.write(
      `ripple listening on ${config.host}:${node.port}  app_id=${app.id} key=${app.key} secret=${loaded.developmentSecret ? app.secret : '(configured, not shown)'}\n`,
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
  // SIGHUP too: a closed terminal or a supervisor's reload must not kill the node without a drain.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => shutdown(signal));
}

void main();
