/**
 * The near cache's rules, one by one, on the class itself with an invalidation source the test
 * drives (when an invalidation arrives matters here, to the microtask): the real stores' sources
 * are in test/state/near-cache.test.ts. Bounded (least recently used out first); a read whose key
 * was invalidated in flight is answered but not cached; nothing is cached while invalidations do
 * not flow or when they broke during the read; an entry is never served past the store's expiry;
 * null is never cached; a flush empties it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NearCache, type InvalidationSource, type Loaded } from '../../src/state/near-cache/near-cache.ts';

class DrivenSource implements InvalidationSource {
  epoch: number | undefined = 1;
  #handler: (keys: readonly string[] | null) => void = () => {};
  onInvalidate(handler: (keys: readonly string[] | null) => void): void {
    this.#handler = handler;
  }
  announce(keys: readonly string[] | null): void {
    this.#handler(keys);
  }
  settled = async () => {};
  close = async () => {};
}

/** A store of versioned values that counts its reads; `hold` makes the next read wait for `release`. */
class CountingStore {
  readonly values = new Map<string, number>();
  reads = 0;
  expiresAt: number | null = null;
  #held: { release: () => void } | undefined;

  load = (key: string) => async (): Promise<Loaded<{ v: number }>> => {
    this.reads++;
    const v = this.values.get(key);
    if (this.#held) await new Promise<void>((release) => (this.#held = { release }));
    return { value: v === undefined ? null : { v }, expiresAt: this.expiresAt };
  };

  /** The next read answers what the store holds now, but only once released. */
  hold(): () => void {
    this.#held = { release: () => {} };
    return () => {
      const held = this.#held!;
      this.#held = undefined;
      held.release();
    };
  }
}

const setup = (maxEntries = 100) => {
  const source = new DrivenSource();
  const cache = new NearCache(source, maxEntries);
  const store = new CountingStore();
  const read = (key: string) => cache.read(key, store.load(key)).then((r) => r?.v ?? null);
  return { source, cache, store, read };
};

describe('the near cache', () => {
  it('serves a repeat read from memory and forgets a key the store announces', async () => {
    const { source, store, read } = setup();
    store.values.set('k', 1);
    assert.equal(await read('k'), 1);
    assert.equal(await read('k'), 1);
    assert.equal(store.reads, 1);
    store.values.set('k', 2);
    source.announce(['k']);
    assert.equal(await read('k'), 2);
    assert.equal(store.reads, 2);
  });

  it('holds at most its cap, and lets the least recently used go first', async () => {
    const { cache, store, read } = setup(3);
    for (const key of ['a', 'b', 'c']) store.values.set(key, 1);
    store.values.set('d', 1);
    await read('a');
    await read('b');
    await read('c');
    await read('a'); // a is now the most recently used; b the least.
    await read('d');
    assert.equal(cache.stats().size, 3);
    const before = store.reads;
    await read('a');
    await read('c');
    await read('d');
    assert.equal(store.reads, before, 'a, c and d are still cached');
    await read('b');
    assert.equal(store.reads, before + 1, 'b was evicted');
  });

  it('answers but does not cache a read whose key changed while it was in flight', async () => {
    const { source, store, read } = setup();
    store.values.set('k', 1);
    const release = store.hold();
    const inFlight = read('k');
    // The store changes after the read took its value, and announces it before the answer arrives.
    store.values.set('k', 2);
    source.announce(['k']);
    release();
    assert.equal(await inFlight, 1, 'the answer of its time');
    assert.equal(await read('k'), 2, 'not kept: the next read goes to the store');
  });

  it('caches nothing while invalidations do not flow, nor a read during which they broke', async () => {
    const { source, cache, store, read } = setup();
    store.values.set('k', 1);
    source.epoch = undefined;
    await read('k');
    await read('k');
    assert.equal(store.reads, 2);
    assert.equal(cache.stats().size, 0);
    assert.equal(cache.stats().bypassed, 2);

    source.epoch = 2;
    const release = store.hold();
    const inFlight = read('k');
    source.epoch = 3; // dropped and reconnected while the read was out: what changed meanwhile is unknown
    release();
    await inFlight;
    assert.equal(cache.stats().size, 0);
  });

  it('starts empty when the source reconnected (a new epoch), and on a flush', async () => {
    const { source, store, read } = setup();
    store.values.set('k', 1);
    await read('k');
    store.values.set('k', 2); // changed while the announcement could not come
    source.epoch = 2;
    assert.equal(await read('k'), 2);
    store.values.set('k', 3);
    source.announce(null);
    assert.equal(await read('k'), 3);
  });

  it("never serves an entry past the store's own expiry of it", async () => {
    const { store, read } = setup();
    store.values.set('k', 1);
    store.expiresAt = Date.now() + 40;
    await read('k');
    assert.equal(await read('k'), 1);
    assert.equal(store.reads, 1);
    const expiry = store.expiresAt;
    store.values.delete('k'); // the store expired it, and said nothing
    while (Date.now() < expiry) await new Promise((resolve) => setTimeout(resolve, expiry - Date.now()));
    assert.equal(await read('k'), null);
    assert.equal(store.reads, 2);
  });

  it('never caches an absent value: a create need not reach anyone', async () => {
    const { store, read } = setup();
    assert.equal(await read('k'), null);
    store.values.set('k', 1);
    assert.equal(await read('k'), 1);
  });
});
