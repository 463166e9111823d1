// The one logger, passed down; modules take child loggers. Secrets, signatures, auth tokens and
// what clients say about their users (channel_data, user_data) never reach it: every field of
// those names is redacted, wherever a log call puts it.
import pino, { type Logger } from 'pino';
import pinoPretty from 'pino-pretty';

const REDACTED = [
  'secret', 'password', 'passphrase', 'sentinelPassword', 'encryptionMasterKeyBase64', 'encryptionMasterKey',
  'auth', 'auth_signature', 'signature', 'headers', 'channel_data', 'user_data',
];

export interface LogOutput {
  /** A person reads it (a terminal): one coloured line per entry instead of JSON. */
  pretty: boolean;
}

export function createLogger(level: string, output: LogOutput): Logger {
  const options = {
    level,
    base: { pid: process.pid },
    redact: [...REDACTED.flatMap((k) => [k, `*.${k}`]), 'apps[*].secret', 'apps[*].encryptionMasterKeyBase64', 'apps[*].webhooks[*].headers'],
  };
  if (!output.pretty) return pino(options);
  // The synchronous stream form, not a transport: no worker thread, so every line is written before
  // the process exits (also on process.exit) and nothing keeps it alive.
  return pino(options, pinoPretty({ sync: true, destination: 1, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true }));
}
