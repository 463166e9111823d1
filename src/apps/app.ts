import type { AppConfig } from '../config/schema.js';

/** During a secret rotation's overlap: the secret the app had before, still accepted until `until`. */
export interface PreviousSecret {
  readonly secret: string;
  /** Milliseconds since the epoch. */
  readonly until: number;
}

/** An app as the rest of the server sees it: its settings plus limits precomputed in bytes. */
export interface App extends AppConfig {
  readonly maxEventPayloadBytes: number;
  readonly maxPresenceMemberBytes: number;
  /** encryptionMasterKeyBase64 decoded: the server encrypts plain data for private-encrypted- channels */
  readonly encryptionMasterKey?: Uint8Array;
  /** Set while a rotated secret's overlap lasts (README.md, "Rotating a secret"). */
  readonly previousSecret?: PreviousSecret;
}

export function toApp(cfg: AppConfig, previousSecret?: PreviousSecret): App {
  return Object.freeze({
    ...cfg,
    maxEventPayloadBytes: Math.floor(cfg.maxEventPayloadInKb * 1024),
    maxPresenceMemberBytes: Math.floor(cfg.maxPresenceMemberSizeInKb * 1024),
    encryptionMasterKey: cfg.encryptionMasterKeyBase64 === undefined ? undefined : new Uint8Array(Buffer.from(cfg.encryptionMasterKeyBase64, 'base64')),
    ...(previousSecret && { previousSecret: Object.freeze({ ...previousSecret }) }),
  });
}

/**
 * Whether a signature checks out with a secret the app accepts now: its secret, or during a
 * rotation's overlap the previous one. Every signature the server checks (REST requests, channel
 * auth, sign-in) goes through here; what the server signs itself (webhooks) uses `app.secret` only.
 */
export function signedWithAcceptedSecret(app: App, validWith: (secret: string) => boolean, nowMs = Date.now()): boolean {
  if (validWith(app.secret)) return true;
  const previous = app.previousSecret;
  return previous !== undefined && nowMs < previous.until && validWith(previous.secret);
}

/** An app's settings without what toApp derives from them. */
export function configOf(app: App): AppConfig {
  const { maxEventPayloadBytes: _bytes, maxPresenceMemberBytes: _memberBytes, encryptionMasterKey: _key, previousSecret: _previous, ...config } = app;
  return config;
}
