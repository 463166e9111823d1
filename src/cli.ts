#!/usr/bin/env node
// Entry point: parse the command line, read configuration once, start one node, stop gracefully on
// SIGTERM, SIGINT or SIGHUP. Exit codes: 0 after --help/--version or a clean stop, 2 for a usage or
// configuration error, 1 when the node cannot start (e.g. its port is taken).
import cluster from 'node:cluster';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toolCommands } from './commands/index.js';
import { parseCliArgs, usage, UsageError, type CliArgs } from './config/cli-args.js';
import { loadConfigWithNotes, ConfigError, type LoadedConfig } from './config/load.js';
import { createLogger } from './log.js';
import { SLOT_ENV } from './workers/messages.js';

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
  const argv = process.argv.slice(2);
  const tool = toolCommands[argv[0]];
  if (tool) {
    process.exitCode = await (await tool.load()).run(argv.slice(1), process.env);
    return;
  }
  let args: CliArgs;
  try {
    args = parseCliArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) fail(err.message, 2, "Run 'ripple --help' for usage.\n");
    throw err;
  }
  if (args.command === 'help') {
    process.stdout.write(usage(Object.entries(toolCommands).map(([name, c]) => [name, c.summary])));
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
  // With several node processes the primary has said these once already.
  if (!cluster.isWorker) {
    for (const w of loaded.warnings) log.warn(w);
    for (const n of loaded.notices) log.info(n);
  }
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  // The built-in development secret is printed so a new user can point an SDK at it at once; a
  // secret the operator chose is never printed or logged.
  const announce = (port: number, extra = '') => {
    if (config.appStore) {
      process.stdout.write(`ripple listening on ${config.host}:${port}${extra}  apps from the ${config.appStore.driver} table ${config.appStore.table}\n`);
      return;
    }
    if (config.apps.length !== 1) return;
    const app = config.apps[0];
    process.stdout.write(
      `ripple listening on ${config.host}:${port}${extra}  app_id=${app.id} key=${app.key} secret=${loaded.developmentSecret ? app.secret : '(configured, not shown)'}\n`,
    );
  };

  if (config.workers > 1 && cluster.isPrimary) {
    const { runPrimary, PrimaryStartError } = await import('./workers/primary.js');
    const metrics = config.metricsPort === undefined ? undefined : { host: config.metricsHost ?? config.host, port: config.metricsPort, pathPrefix: config.pathPrefix };
    try {
      const code = await runPrimary({ workers: config.workers, shutdownTimeoutMs: config.shutdownTimeoutMs, metrics, log, onListening: (port) => announce(port, `  workers=${config.workers}`) });
      process.exit(code);
    } catch (err) {
      if (err instanceof PrimaryStartError) fail(err.message, 1);
      throw err;
    }
  }

  // Before the server's modules load (they take a moment), so the primary's metric requests are answered meanwhile.
  const primary = cluster.isWorker ? (await import('./workers/worker.js')).primaryLink(Number(process.env[SLOT_ENV])) : undefined;
  // loaded only now, so --help, --version and configuration errors answer without loading the server
  const { startNode, StartError } = await import('./node.js');
  // Each process is a node of the cluster: NODE_ID names the machine, the slot the process on it.
  const nodeConfig = primary && config.nodeId !== undefined ? { ...config, nodeId: `${config.nodeId}-${primary.slot}` } : config;
  let node;
  try {
    node = await startNode(nodeConfig, log, { primary });
  } catch (err) {
    // Whatever stops the start (a port taken, the metrics port too) ends the process: never half started.
    if (!(err instanceof StartError)) log.error({ err }, 'start failed');
    fail(err instanceof Error ? err.message : String(err), 1);
  }
  if (primary) primary.listening(node.port);
  else announce(node.port);

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
  // A node process whose primary is gone (killed) drains rather than serve on unsupervised.
  if (primary) process.once('disconnect', () => shutdown('primary gone'));
}

void main();
