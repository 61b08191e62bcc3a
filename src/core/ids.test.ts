import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { looksLikeIntentId, newIntentId, newOpaqueId, slotOfIntentId, subjectSlot } from './ids.js';

describe('ids', () => {
  it('are unique, well formed and carry their subject slot, across refills of the random pool', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5_000; i++) {
      const subject = `user:${i % 7}`;
      const id = newIntentId(subject);
      expect(looksLikeIntentId(id)).toBe(true);
      expect(slotOfIntentId(id)).toBe(createHash('sha256').update(subject).digest('hex').slice(0, 4));
      ids.add(id);
      // Opaque ids draw from the same pool in other sizes: every id stays whole and distinct.
      const opaque = newOpaqueId('conn');
      expect(opaque).toMatch(/^conn_[A-Za-z0-9_-]{16}$/);
      ids.add(opaque);
    }
    expect(ids.size).toBe(10_000);
    expect(looksLikeIntentId(newIntentId())).toBe(true);
  });

  it('gives a subject the same slot every time', () => {
    expect(subjectSlot('user:alice')).toBe(subjectSlot('user:alice'));
    expect(subjectSlot('user:alice')).toMatch(/^[0-9a-f]{4}$/);
  });
});
