/**
 * A set of objects, each of which keeps its own place in it (a numeric field named at construction):
 * add, has and delete cost an array write, with no hash table behind them.
 *
 * Why not a Set, on a hot path where entries keep coming and going (the publishes awaiting their
 * confirm): V8 rebuilds a Set's table every few hundred adds and deletes, and points each table it
 * left at the one that replaced it (for live iterators). Once one of those tables has been promoted
 * to the old generation and has died there, it keeps every later table, and every entry they held,
 * alive through each young-generation collection until the next full one. Measured on the
 * benchmark's publisher (1,000 unconfirmed, Node 24): 1.8 MB more surviving each scavenge, enough
 * to make V8 double the young generation (peak RSS +32 MB). A slot is cleared when its entry leaves,
 * and the arrays only grow (to the largest size the set had): nothing here keeps a departed entry.
 */
export class SlotSet<K extends string, T extends { [P in K]?: number }> {
  private readonly items: Array<T | undefined> = [];
  /** Slots whose entry left, reused first. */
  private readonly free: number[] = [];
  private count = 0;

  constructor(
    /** The field of T where an entry keeps its slot; an object may be in one SlotSet per field. */
    private readonly key: K,
  ) {}

  get size(): number {
    return this.count;
  }

  has(item: T): boolean {
    const slot = item[this.key];
    return slot !== undefined && this.items[slot] === item;
  }

  /** False when it is in already. */
  add(item: T): boolean {
    if (this.has(item)) return false;
    const slot = this.free.length > 0 ? this.free.pop()! : this.items.length;
    this.items[slot] = item;
    (item as { [P in K]?: number })[this.key] = slot;
    this.count++;
    return true;
  }

  /** False when it was not in. */
  delete(item: T): boolean {
    if (!this.has(item)) return false;
    const slot = item[this.key]!;
    this.items[slot] = undefined;
    (item as { [P in K]?: number })[this.key] = undefined;
    this.free.push(slot);
    this.count--;
    return true;
  }

  /** The entries, in no particular order; `visit` may delete the one it is given. */
  forEach(visit: (item: T) => void): void {
    for (let slot = 0; slot < this.items.length; slot++) {
      const item = this.items[slot];
      if (item !== undefined) visit(item);
    }
  }
}
