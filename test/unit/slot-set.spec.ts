import fc from 'fast-check';
import { SlotSet } from '../../lib/util/slot-set';

interface Item {
  name: number;
  slot?: number;
  other?: number;
}

const contents = (set: SlotSet<'slot', Item>) => {
  const seen: Item[] = [];
  set.forEach((item) => seen.push(item));
  return seen;
};

describe('SlotSet', () => {
  it('behaves like a Set of objects under any sequence of adds and deletes (property)', () => {
    const op = fc.record({ add: fc.boolean(), name: fc.integer({ min: 0, max: 11 }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const items = Array.from({ length: 12 }, (_, name): Item => ({ name }));
        const set = new SlotSet<'slot', Item>('slot');
        const model = new Set<Item>();
        for (const { add, name } of ops) {
          const item = items[name];
          if (add) expect(set.add(item)).toBe(!model.has(item) && model.add(item) !== undefined);
          else expect(set.delete(item)).toBe(model.delete(item));
          expect(set.size).toBe(model.size);
          for (const each of items) expect(set.has(each)).toBe(model.has(each));
          expect(new Set(contents(set))).toEqual(model);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps nothing of an entry once it is deleted, and reuses its slot', () => {
    const set = new SlotSet<'slot', Item>('slot');
    const [a, b, c]: Item[] = [{ name: 1 }, { name: 2 }, { name: 3 }];
    set.add(a);
    set.add(b);
    set.delete(a);
    expect(a.slot).toBeUndefined();
    // What would keep a departed entry alive: nothing of the set's own refers to it.
    expect((set as unknown as { items: unknown[] }).items).not.toContain(a);
    set.add(c);
    expect((set as unknown as { items: unknown[] }).items).toHaveLength(2);
  });

  it('lets one object be in two sets, each through its own field', () => {
    const first = new SlotSet<'slot', Item>('slot');
    const second = new SlotSet<'other', Item>('other');
    const [a, b] = [{ name: 1 }, { name: 2 }];
    first.add(b);
    first.add(a);
    second.add(a);
    expect([first.has(a), second.has(a), second.has(b)]).toEqual([true, true, false]);
    first.delete(a);
    expect([first.has(a), second.has(a)]).toEqual([false, true]);
  });

  it('lets forEach delete the entry it is visiting', () => {
    const set = new SlotSet<'slot', Item>('slot');
    const items = [1, 2, 3, 4].map((name) => ({ name }));
    items.forEach((item) => set.add(item));
    set.forEach((item) => {
      if (item.name % 2 === 0) set.delete(item);
    });
    expect(contents(set).map((item) => item.name)).toEqual([1, 3]);
  });
});
