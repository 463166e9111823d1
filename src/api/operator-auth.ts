// The operator's credential (config.operatorToken): what only an operator may do (manage apps, watch
// every app's debug log) asks for `Authorization: Bearer <token>`. No token configured: nobody is one.
import { safeEqual } from '../protocol/signature.js';

/** Whether an Authorization header carries the operator's token (compared in constant time). */
export function isOperator(authorization: string | undefined, token: string | undefined): boolean {
  if (!token || !authorization) return false;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return m !== null && safeEqual(m[1], token);
}
