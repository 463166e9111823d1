import type { AppConfig } from '../config/schema.js';

/** An app as the rest of the server sees it: its settings plus limits precomputed in bytes. */
export interface App extends AppConfig {
  readonly maxEventPayloadBytes: number;
  readonly maxPresenceMemberBytes: number;
  /** encryptionMasterKeyBase64 decoded: the server encrypts plain data for private-encrypted- channels */
  readonly encryptionMasterKey?: Uint8Array;
}

export function toApp(cfg: AppConfig): App {
  return Object.freeze({
    ...cfg,
    maxEventPayloadBytes: Math.floor(cfg.maxEventPayloadInKb * 1024),
    maxPresenceMemberBytes: Math.floor(cfg.maxPresenceMemberSizeInKb * 1024),
    encryptionMasterKey: cfg.encryptionMasterKeyBase64 === undefined ? undefined : new Uint8Array(Buffer.from(cfg.encryptionMasterKeyBase64, 'base64')),
  });
}
