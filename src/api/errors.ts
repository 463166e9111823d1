// One error shape for the REST API: the real HTTP status and a JSON body (spec §9.4), for Fastify's
// routes and the trigger fast path alike.
import type { Logger } from 'pino';
import { StoreUnavailableError } from '../presence/store.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function errorBody(status: number, message: string): { error: string; code: number } {
  return { error: message, code: status };
}

/** Status and JSON body for anything a handler throws; unexpected errors are logged, never shown. */
export function errorResponse(err: Error & { statusCode?: number }, log: Logger): { status: number; body: ReturnType<typeof errorBody> } {
  if (err instanceof HttpError) return { status: err.status, body: errorBody(err.status, err.message) };
  if (err instanceof StoreUnavailableError) return { status: 503, body: errorBody(503, err.message) };
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
  if (status >= 500) log.error({ err }, 'REST handler failed');
  return { status, body: errorBody(status, status >= 500 ? 'Internal server error' : err.message) };
}

/** A REST body as JSON: empty is {}; anything unparsable is a 400. */
export function parseBody(buf: Buffer | undefined): unknown {
  if (!buf || buf.length === 0) return {};
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    throw new HttpError(400, 'Request body is not valid JSON');
  }
}
