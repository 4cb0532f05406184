import { randomBytes } from 'node:crypto';

/**
 * A map from strings to objects for a hot path where entries keep coming and going (the mandatory
 * publishes awaiting their confirm, by message id): open addressing with linear probing over plain
 * arrays, which only grow. Not a Map for the reason SlotSet gives: V8 rebuilds a Map's table every
 * few hundred sets and deletes and links the old table to the new one, so that one dead table in
 * the old generation keeps all later ones, and all they held, alive until the next full collection.
 * Here a deleted entry's slots are cleared at once (backward-shift deletion: no tombstones either).
 */
export class ProbeMap<V extends object> {
  private keys: Array<string | undefined> = new Array<string | undefined>(INITIAL_CAPACITY).fill(undefined);
  private values: Array<V | undefined> = new Array<V | undefined>(INITIAL_CAPACITY).fill(undefined);
  /** Each key's hash, so that moving entries never hashes a key again. */
  private hashes = new Int32Array(INITIAL_CAPACITY);
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(key: string): V | undefined {
    const slot = this.probe(key, hashOf(key));
    return this.keys[slot] === key ? this.values[slot] : undefined;
  }

  has(key: string): boolean {
    return this.keys[this.probe(key, hashOf(key))] === key;
  }

  set(key: string, value: V): void {
    const hash = hashOf(key);
    const slot = this.probe(key, hash);
    this.values[slot] = value;
    if (this.keys[slot] === key) return;
    this.keys[slot] = key;
    this.hashes[slot] = hash;
    // At most half full, so that a probe ends soon.
    if (++this.count * 2 > this.keys.length) this.grow();
  }

  delete(key: string): boolean {
    let hole = this.probe(key, hashOf(key));
    if (this.keys[hole] !== key) return false;
    const mask = this.keys.length - 1;
    // Moves back every later entry of the same run whose probe would otherwise cross the hole.
    for (let next = (hole + 1) & mask; this.keys[next] !== undefined; next = (next + 1) & mask) {
      const home = this.hashes[next] & mask;
      const between = hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (between) continue;
      this.keys[hole] = this.keys[next];
      this.values[hole] = this.values[next];
      this.hashes[hole] = this.hashes[next];
      hole = next;
    }
    this.keys[hole] = undefined;
    this.values[hole] = undefined;
    this.count--;
    return true;
  }

  /** The slot that holds `key`, or the empty one where it would go. */
  private probe(key: string, hash: number): number {
    const mask = this.keys.length - 1;
    let slot = hash & mask;
    while (this.keys[slot] !== undefined && this.keys[slot] !== key) slot = (slot + 1) & mask;
    return slot;
  }

  private grow(): void {
    const { keys, values, hashes } = this;
    const capacity = keys.length * 2;
    this.keys = new Array<string | undefined>(capacity).fill(undefined);
    this.values = new Array<V | undefined>(capacity).fill(undefined);
    this.hashes = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] === undefined) continue;
      let slot = hashes[i] & mask;
      while (this.keys[slot] !== undefined) slot = (slot + 1) & mask;
      this.keys[slot] = keys[i];
      this.values[slot] = values[i];
      this.hashes[slot] = hashes[i];
    }
  }
}

/** A power of two. */
const INITIAL_CAPACITY = 16;

/**
 * Random per process, like V8's own hash seed: keys come from outside (a retried message keeps the
 * message id its producer chose), and ids that collide must not be computable in advance.
 */
const SEED = randomBytes(4).readInt32LE(0);

/** FNV-1a over the UTF-16 code units, from an offset basis mixed with this process's seed. */
export function hashOf(key: string): number {
  let hash = 0x811c9dc5 ^ SEED;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return hash;
}
