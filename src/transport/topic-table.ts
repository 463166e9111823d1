// Which connections are in which topic, for transports that broadcast in JavaScript (HTTP sessions,
// the in-memory transport); uWS keeps its WebSockets' topics natively.
export class TopicTable<C> {
  private readonly byTopic = new Map<string, Set<C>>();
  private readonly topicsOf = new Map<C, Set<string>>();

  members(topic: string): ReadonlySet<C> | undefined {
    return this.byTopic.get(topic);
  }

  join(topic: string, conn: C): void {
    let set = this.byTopic.get(topic);
    if (!set) this.byTopic.set(topic, (set = new Set()));
    set.add(conn);
    let topics = this.topicsOf.get(conn);
    if (!topics) this.topicsOf.set(conn, (topics = new Set()));
    topics.add(topic);
  }

  leave(topic: string, conn: C): void {
    const topics = this.topicsOf.get(conn);
    if (!topics?.delete(topic)) return;
    if (topics.size === 0) this.topicsOf.delete(conn);
    const set = this.byTopic.get(topic)!;
    set.delete(conn);
    if (set.size === 0) this.byTopic.delete(topic);
  }

  /** Every topic of a connection that closed. */
  leaveAll(conn: C): void {
    for (const topic of this.topicsOf.get(conn) ?? []) this.leave(topic, conn);
  }
}
