// pusher:signin (spec §4.6): the signature over socket_id::user::user_data, then the session is the
// user's: it receives #server-to-user-<id> events, terminate_connections reaches it, and its
// watchlist (spec §4.8) follows the online state of other users cluster-wide.
import { signedWithAcceptedSecret } from '../apps/app.js';
import { Codes } from '../protocol/constants.js';
import * as frames from '../protocol/frames.js';
import { MAX_DATA_DEPTH, nestedDeeperThan } from '../protocol/parse.js';
import { signinAuthString, verifyToken } from '../protocol/signature.js';
import type { Session } from './session.js';
import type { SessionDeps } from './deps.js';

const MAX_WATCHLIST = 100;

/** Signs the session in; true when it became signed in (not before, not refused). */
export function signin(deps: SessionDeps, s: Session, data: Record<string, unknown>): boolean {
  const app = s.app;
  const userData = data.user_data;
  if (typeof userData !== 'string' || !signedWithAcceptedSecret(app, (secret) => verifyToken(app.key, secret, data.auth, signinAuthString(s.socketId, userData)))) {
    s.fail(Codes.unauthorized, 'Connection not authorized.');
    return false;
  }
  let parsed: Record<string, unknown> | null;
  try {
    parsed = JSON.parse(userData);
  } catch {
    s.fail(Codes.unauthorized, 'The user data must be a JSON object.');
    return false;
  }
  const id = parsed?.id;
  if (typeof id !== 'string' || id === '') {
    s.fail(Codes.unauthorized, 'The returned user data must contain the "id" field.');
    return false;
  }
  // The REST API names users by id (terminate_connections): every id signed in must fit its limit.
  if (id.length > app.maxUserIdLength) {
    s.fail(Codes.unauthorized, `The user id is longer than the allowed ${app.maxUserIdLength} characters.`);
    return false;
  }
  // user_info is serialised again for presence and watchlists: deep nesting would overflow the stack.
  if (nestedDeeperThan(parsed!.user_info, MAX_DATA_DEPTH)) {
    s.fail(Codes.unauthorized, `The user info is nested deeper than ${MAX_DATA_DEPTH} levels.`);
    return false;
  }
  if (s.user) {
    if (s.user.id !== id) s.fail(Codes.unauthorized, 'The connection is already signed in as another user.');
    else s.send(frames.signinSuccess(userData));
    return false;
  }
  // Ids are strings on the wire; numbers are accepted and stringified, as presence user_ids are.
  let watchlist = Array.isArray(parsed!.watchlist)
    ? (parsed!.watchlist as unknown[])
        .map((u) => (typeof u === 'number' && Number.isFinite(u) ? String(u) : u))
        .filter((u): u is string => typeof u === 'string' && u !== '')
    : [];
  const overLimit = watchlist.length > MAX_WATCHLIST;
  if (overLimit) watchlist = watchlist.slice(0, MAX_WATCHLIST);

  s.user = { id, userInfo: parsed!.user_info, watchlist };
  s.authenticated();
  // Signed-in sessions receive their user's events even before subscribing to the channel (spec §4.7).
  deps.channels.signIn(s, parsed!.user_info);
  s.send(frames.signinSuccess(userData));
  if (overLimit) s.send(frames.errorFrame(Codes.serverError, `Watchlist holds more than ${MAX_WATCHLIST} users; only the first ${MAX_WATCHLIST} are watched`));
  return true;
}
