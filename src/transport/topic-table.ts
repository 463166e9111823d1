// Which connections are in which topic, for transports that broadcast in JavaScript (HTTP sessions,
// the in-memory transport); uWS keeps its WebSockets' topics natively.
export class TopicTable<C> {
  private readonly topics = new Map<string, Set<C>>();

  members(topic: string): ReadonlySet<C> | undefined {
    return this.topics.get(topic);
  }

  join(topic: string, conn: C): void {
    let set = this.topics.get(topic);
    if (!set) this.topics.set(topic, (set = new Set()));
    set.add(conn);
  }

  leave(topic: string, conn: C): void {
    const set = this.topics.get(topic);
    if (!set) return;
    set.delete(conn);
    if (set.size === 0) this.topics.delete(topic);
  }
}
