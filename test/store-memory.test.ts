import { describe, expect, it } from 'vitest';
import { memoryStore } from '../src/store/index.js';
import { describeStoreContract, makeRecord } from './support/store-contract.js';

describeStoreContract('memoryStore', async () => {
  const store = memoryStore();
  return { store, cleanup: () => store.close() };
});

describe('memoryStore', () => {
  it('stays within maxEntries, dropping the least recently used intent', async () => {
    const store = memoryStore({ maxEntries: 2 });
    const [a, b, c] = [makeRecord(), makeRecord(), makeRecord()];
    await store.insert(a);
    await store.insert(b);
    await store.get(a.id); // a is now more recent than b
    await store.insert(c);
    expect(await store.get(b.id)).toBeUndefined();
    expect((await store.get(a.id))?.id).toBe(a.id);
    expect((await store.get(c.id))?.id).toBe(c.id);
    await store.close();
  });

  it('refuses a maxEntries that is not a positive integer', () => {
    expect(() => memoryStore({ maxEntries: 0 })).toThrow(expect.objectContaining({ code: 'config_error' }));
    expect(() => memoryStore({ maxEntries: 1.5 })).toThrow(/maxEntries/);
  });

  it('leaves no timer that would keep the process alive', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    // Everything below settles in microtasks, so no other code can add or clear a timer meanwhile.
    const store = memoryStore();
    const record = makeRecord({ expiresAt: Date.now() + 50 });
    await store.insert(record);
    await store.update({ ...record, status: 'paid' }, 1);
    await store.get(record.id);
    await store.setChoice('alice', 'stripe', 50);
    await store.getChoice('alice');
    await store.markEvent('evt', 50);
    const off = store.subscribe(() => {});
    await store.publish({ intentId: record.id, status: 'paid', version: 2 });
    off();
    expect(timers()).toBe(before);
    await store.close();
  });

  it('reports a throwing listener to the logger', async () => {
    const warnings: string[] = [];
    const store = memoryStore({
      logger: { debug() {}, info() {}, warn: (message) => warnings.push(message), error() {} },
    });
    store.subscribe(() => {
      throw new Error('boom');
    });
    await store.publish({ intentId: 'pi_1', status: 'paid', version: 2 });
    expect(warnings).toEqual(['status listener failed']);
    await store.close();
  });
});
