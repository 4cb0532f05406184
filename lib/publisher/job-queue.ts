/**
 * A FIFO that stays O(1) at 100,000 entries (Array#shift is not): entries are taken from a head
 * index and the array is compacted once the taken part dominates.
 */
export class JobQueue<T extends { deadline: number }> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /**
   * Puts items back in front, the first of them first: the publishes a lost channel left
   * unconfirmed go out again in the order they were first sent, before anything that waited.
   */
  putBack(items: T[]): void {
    if (items.length === 0) return;
    if (items.length <= this.head) {
      this.head -= items.length;
      for (let i = 0; i < items.length; i++) this.items[this.head + i] = items[i];
    } else {
      this.items = [...items, ...this.items.slice(this.head)];
      this.head = 0;
    }
  }

  /** The item `shift()` would take, left in place. */
  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes and returns every item whose deadline has passed. */
  takeExpired(now: number): T[] {
    const expired: T[] = [];
    const kept: Array<T | undefined> = [];
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i]!;
      (item.deadline <= now ? expired : kept).push(item);
    }
    if (expired.length > 0) {
      this.items = kept;
      this.head = 0;
    }
    return expired;
  }

  /** Removes and returns everything. */
  clear(): T[] {
    const all = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return all;
  }
}
