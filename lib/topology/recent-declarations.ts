/**
 * The declarations made in the last `freshForMs`, by name, at most `max` of them: one older than
 * that is made again on its next use (for a queue with `x-expires`, a declaration renews its
 * lease), so an old one is worth nothing and is dropped. Bounded whatever the number of names
 * used over the life of the app.
 */
export class RecentDeclarations<T> {
  /** In the order they were made (a new one is set after deleting the old): the oldest first. */
  private readonly entries = new Map<string, { made: Promise<T>; at: number }>();

  constructor(
    private readonly freshForMs: number,
    private readonly max: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The declaration of `name` if it is fresh (made, or still being made), else the one `declare` starts now. */
  get(name: string, declare: () => Promise<T>): Promise<T> {
    const now = this.now();
    const entry = this.entries.get(name);
    if (entry && now - entry.at < this.freshForMs) return entry.made;
    this.entries.delete(name);
    this.prune(now);
    const made = declare();
    const created = { made, at: now };
    this.entries.set(name, created);
    // A failed one is not remembered: the next use tries again.
    made.catch(() => this.forgetIf(name, created));
    return made;
  }

  /** The thing declared went missing: made again on next use. */
  forget(name: string): void {
    this.entries.delete(name);
  }

  private forgetIf(name: string, entry: { made: Promise<T>; at: number }): void {
    if (this.entries.get(name) === entry) this.entries.delete(name);
  }

  /** Drops, oldest first, what is stale and what leaves no room for one more. */
  private prune(now: number): void {
    for (const [name, entry] of this.entries) {
      if (this.entries.size < this.max && now - entry.at < this.freshForMs) return;
      this.entries.delete(name);
    }
  }
}
