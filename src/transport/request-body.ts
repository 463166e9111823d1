// Reading an HTTP request's body from uWS, for the REST bridge and the HTTP-fallback transport.
import type { HttpResponse } from 'uWebSockets.js';

export interface BodyHandlers {
  done(body: Buffer): void;
  /** the body passed `maxBytes`: called once, and nothing more is read */
  tooLarge(): void;
  /** a handler threw (an exception escaping a uWS callback would abort the process) */
  failed(err: unknown): void;
}

/** Reads a request body up to `maxBytes`; `keep` false drops the bytes (only the size counts). */
export function readBody(res: HttpResponse, maxBytes: number, keep: boolean, h: BodyHandlers): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  res.onData((chunk, isLast) => {
    if (over) return;
    try {
      size += chunk.byteLength;
      if (size > maxBytes) {
        over = true;
        return h.tooLarge();
      }
      // uWS reuses the chunk's memory after this callback returns: slice copies it (once).
      if (keep && chunk.byteLength > 0) chunks.push(Buffer.from(chunk.slice(0)));
      if (isLast) h.done(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    } catch (err) {
      h.failed(err);
    }
  });
}
