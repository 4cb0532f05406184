import fc from 'fast-check';
import { hashOf, ProbeMap } from '../../lib/util/probe-map';

interface Value {
  name: string;
}

/** Keys whose home slot in the initial 16 slots is `home`: they collide and make one probe run. */
function keysAt(home: number, count: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) if ((hashOf(`k${i}`) & 15) === home) keys.push(`k${i}`);
  return keys;
}

function expectSame(map: ProbeMap<Value>, model: Map<string, Value>, keys: string[]): void {
  expect(map.size).toBe(model.size);
  for (const key of keys) {
    expect(map.get(key)).toBe(model.get(key));
    expect(map.has(key)).toBe(model.has(key));
  }
}

describe('ProbeMap', () => {
  it('behaves like a Map under any sequence of sets and deletes, across growth (property)', () => {
    const keys = Array.from({ length: 40 }, (_, i) => `id-${i}`);
    const op = fc.record({ set: fc.boolean(), key: fc.constantFrom(...keys) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 150 }), (ops) => {
        const map = new ProbeMap<Value>();
        const model = new Map<string, Value>();
        for (const step of ops) {
          if (step.set) {
            const value = { name: step.key };
            map.set(step.key, value);
            model.set(step.key, value);
          } else {
            expect(map.delete(step.key)).toBe(model.delete(step.key));
          }
          expectSame(map, model, keys);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('finds every key of a probe run that wraps past the last slot, whichever is deleted first (property)', () => {
    // Homes 14 and 15 in 16 slots: the run wraps to slots 0, 1, ... (at most 8 keys: no growth).
    const keys = [...keysAt(15, 4), ...keysAt(14, 3)];
    fc.assert(
      fc.property(fc.shuffledSubarray(keys, { minLength: keys.length }), fc.shuffledSubarray(keys), (order, deletes) => {
        const map = new ProbeMap<Value>();
        const model = new Map<string, Value>();
        for (const key of order) {
          const value = { name: key };
          map.set(key, value);
          model.set(key, value);
        }
        for (const key of deletes) {
          expect(map.delete(key)).toBe(model.delete(key));
          expectSame(map, model, keys);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps nothing of a deleted entry, and replaces the value of a key set again', () => {
    const map = new ProbeMap<Value>();
    const [first, second] = [{ name: 'first' }, { name: 'second' }];
    map.set('a', first);
    map.set('a', second);
    expect([map.size, map.get('a')]).toEqual([1, second]);
    map.delete('a');
    const internals = map as unknown as { keys: unknown[]; values: unknown[] };
    // What would keep a departed entry alive: nothing of the map's own refers to it.
    expect(internals.values).not.toContain(second);
    expect(internals.keys).not.toContain('a');
    expect(map.get('a')).toBeUndefined();
  });

  it("hashes with a seed of the process's own, so that colliding keys cannot be worked out in advance", () => {
    expect(hashOf('a')).toBe(hashOf('a'));
    // FNV-1a from the published offset basis, as an unseeded hash would give:
    expect([hashOf('') >>> 0, hashOf('a') >>> 0, hashOf('foobar') >>> 0]).not.toEqual([0x811c9dc5, 0xe40c292c, 0xbf9cf968]);
  });
});
