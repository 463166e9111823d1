import type { AppConfig } from '../config/schema.js';

/** An app as the rest of the server sees it: its settings plus limits precomputed in bytes. */
export interface App extends AppConfig {
  readonly maxEventPayloadBytes: number;
  readonly maxPresenceMemberBytes: number;
}

export function toApp(cfg: AppConfig): App {
  return Object.freeze({
    ...cfg,
    maxEventPayloadBytes: Math.floor(cfg.maxEventPayloadInKb * 1024),
    maxPresenceMemberBytes: Math.floor(cfg.maxPresenceMemberSizeInKb * 1024),
  });
}
