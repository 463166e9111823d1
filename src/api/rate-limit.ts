// Per-app REST budgets (Soketi's maxBackendEventsPerSecond / maxReadRequestsPerSecond): 429 with
// Retry-After over them, counted cluster-wide by the engine's rate windows.
import type { App } from '../apps/app.js';
import type { RateKind, RateWindows } from '../limits/rate-windows.js';
import { HttpError } from './errors.js';

export type SetHeader = (name: string, value: string) => void;

export async function spend(rates: RateWindows, app: App, header: SetHeader, kind: RateKind, points: number): Promise<void> {
  const limit = kind === 'backend' ? app.maxBackendEventsPerSecond : app.maxReadRequestsPerSecond;
  if (limit < 0) return;
  const d = await rates.consume(app.id, kind, points, limit);
  header('X-RateLimit-Limit', String(limit));
  header('X-RateLimit-Remaining', String(d.remaining));
  if (!d.allowed) {
    header('Retry-After', String(d.retryAfter));
    throw new HttpError(429, `Too many ${kind === 'backend' ? 'events' : 'read requests'}: the app's limit is ${limit} per second`);
  }
}
