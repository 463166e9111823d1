import pino, { type Logger } from 'pino';

/** The one logger, passed down; modules take child loggers. Secrets never reach it. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid }, redact: ['secret', '*.secret', 'apps[*].secret', 'auth', '*.auth', '*.encryptionMasterKeyBase64', 'apps[*].encryptionMasterKeyBase64'] });
}
