// The command line: `ripple [start] [options]`, `ripple --help`, `ripple --version`.
import { parseArgs } from 'node:util';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface CliArgs {
  command: 'start' | 'help' | 'version';
  /** --config FILE / --config=FILE */
  configFile?: string;
  /** --port N (text; validated with the rest of the configuration) */
  port?: string;
  /** --host ADDRESS */
  host?: string;
  /** --debug: log level debug */
  debug?: boolean;
  /** --workers N (text; validated with the rest of the configuration) */
  workers?: string;
}

/** The help text; `tools` are the other commands (`commands/index.ts`) with their one-line summaries. */
export function usage(tools: readonly (readonly [string, string])[] = []): string {
  const other = tools.length ? '\n       ripple <command> [options]   (a command below; ripple <command> --help for its options)' : '';
  return `Usage: ripple [start] [options]${other}

Starts a Pusher-protocol server node (WebSocket and HTTP API on one port).

Commands:
  start                 start a node (the default)
  help                  print this help
${tools.map(([name, summary]) => `  ${name.padEnd(22)}${summary}\n`).join('')}
Options:
  -c, --config FILE     JSON config file: ripple's own shape or a Soketi config file
                        (same as CONFIG_FILE)
  -p, --port PORT       listen port (overrides PORT and the file; default 6001)
      --host ADDRESS    listen address (overrides HOST and the file; default 0.0.0.0,
                        or 127.0.0.1 while the built-in development app is in use)
      --debug           log at level debug (same as LOG_LEVEL=debug)
      --workers N       run N node processes sharing the port, one per core, with one
                        /metrics for all of them (same as WORKERS; needs REDIS_URL)
  -h, --help            print this help and exit
  -v, --version         print the version and exit

Settings are also read from the environment (PORT, HOST, REDIS_URL, APP_ID, APP_KEY,
APP_SECRET, ...) and from Soketi's SOKETI_* variables; see README.md "Configuration".
`;
}

const options = {
  config: { type: 'string', short: 'c' },
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  debug: { type: 'boolean' },
  workers: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** Parses argv (without node and the script). Throws UsageError for anything it does not know. */
export function parseCliArgs(argv: readonly string[]): CliArgs {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    const opt = /'([^']+)'/.exec(e.message)?.[1];
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option ${opt ?? ''}`.trim());
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const name = /--[a-z-]+/.exec(e.message)?.[0] ?? opt ?? 'option';
      throw new UsageError(options[name.slice(2) as keyof typeof options]?.type === 'boolean' ? `${name} takes no value` : `${name} needs a value`);
    }
    throw new UsageError(e.message);
  }
  const { values, positionals } = parsed;
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const sub = positionals[0];
  if (sub !== undefined && sub !== 'start' && sub !== 'help') throw new UsageError(`unknown command "${sub}"`);
  for (const name of ['config', 'port', 'host', 'workers'] as const) {
    if (values[name] === '') throw new UsageError(`--${name} needs a value`);
  }
  const command = values.help || sub === 'help' ? 'help' : values.version ? 'version' : 'start';
  return { command, configFile: values.config, port: values.port, host: values.host, debug: values.debug, workers: values.workers };
}
