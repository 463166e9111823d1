// Who may watch what (issue 21). The console exists only when the operator token is configured
// (config.operatorToken); `Authorization: Bearer <operator token>` sees every app. An app's owner
// proves they hold its key and secret by signing a session request as the REST API is signed (spec
// §9.2; the page signs in the browser, so the secret never travels) and gets a short-lived session
// token derived from the secret: any node of the cluster can check it without shared state, and a
// changed secret ends it.
import { signedWithAcceptedSecret, type App } from '../apps/app.js';
import type { AppStore } from '../apps/store.js';
import { isOperator } from '../api/operator-auth.js';
import { hmacSha256Hex, safeEqual } from '../protocol/signature.js';

/** How long an app owner's session lasts (the page asks for a new one when it runs out). */
export const SESSION_TTL_S = 3600;

export type Access = { operator: true } | { operator: false; appId: string };

const PREFIX = 'rc1';

/**
 * The token's MAC is keyed by a key derived from the secret, not by the secret itself: a channel-auth
 * endpoint signs whatever `socket_id:channel` a client sends it with the secret, and a string such as
 * `ripple-console:<app>:<expires>` is one of those. Every string the secret signs for Pusher (channel
 * auth, user sign-in, REST) has a colon or a newline; the derivation's does not, so none of them is
 * the derived key.
 */
const KEY_DERIVATION = 'ripple console session key v1';

function mac(secret: string, appId: string, expires: number): string {
  return hmacSha256Hex(hmacSha256Hex(secret, KEY_DERIVATION), `${appId}:${expires}`);
}

/** A session token for `app`'s owner, valid SESSION_TTL_S from now. */
export function sessionToken(app: App, nowMs = Date.now()): { token: string; expiresAt: number } {
  const expires = Math.floor(nowMs / 1000) + SESSION_TTL_S;
  return { token: `${PREFIX}.${Buffer.from(app.id).toString('base64url')}.${expires}.${mac(app.secret, app.id, expires)}`, expiresAt: expires * 1000 };
}

/**
 * What the Authorization header opens: the operator (every app), an app owner's session (that app),
 * or nothing (undefined).
 */
export async function accessOf(authorization: string | undefined, operatorToken: string | undefined, apps: AppStore, nowMs = Date.now()): Promise<Access | undefined> {
  if (isOperator(authorization, operatorToken)) return { operator: true };
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  const parts = m?.[1].split('.');
  if (!parts || parts.length !== 4 || parts[0] !== PREFIX) return undefined;
  const appId = Buffer.from(parts[1], 'base64url').toString('utf8');
  const expires = Number(parts[2]);
  if (!Number.isInteger(expires) || expires * 1000 <= nowMs) return undefined;
  let app: App | undefined;
  try {
    app = await apps.findById(appId);
  } catch {
    return undefined;
  }
  if (!app || !signedWithAcceptedSecret(app, (secret) => safeEqual(parts[3], mac(secret, appId, expires)), nowMs)) return undefined;
  return { operator: false, appId };
}

/** Whether `access` may watch (or act on) `appId`. */
export function mayWatch(access: Access, appId: string): boolean {
  return access.operator || access.appId === appId;
}
