// The node's signed-in sessions by user, so terminate_connections (spec §4.9) reaches them.
import type { Session } from './session.js';

export class UserIndex {
  /** `${appId}\n${userId}` → signed-in sessions on this node */
  private users = new Map<string, Set<Session>>();

  add(s: Session): void {
    const k = `${s.app.id}\n${s.user!.id}`;
    let set = this.users.get(k);
    if (!set) this.users.set(k, (set = new Set()));
    set.add(s);
  }

  remove(s: Session): void {
    if (!s.user) return;
    const k = `${s.app.id}\n${s.user.id}`;
    const set = this.users.get(k);
    if (set && set.delete(s) && set.size === 0) this.users.delete(k);
  }

  sessionsOf(appId: string, userId: string): Session[] {
    return [...(this.users.get(`${appId}\n${userId}`) ?? [])];
  }
}
