import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { StartGate } from './start-gate.js';

/** A clock the test moves by hand: "work" takes exactly as long as the test says. */
function manualClock() {
  let now = 1_000;
  return { now: () => now, spend: (ms: number) => (now += ms) };
}

describe('StartGate', () => {
  it('never holds a call back when calls come one after another, however long each takes', () => {
    const clock = manualClock();
    const gate = new StartGate({ sliceMs: 5, burst: 4, now: clock.now });
    for (let i = 0; i < 1_000; i++) {
      expect(gate.enter()).toBeUndefined();
      clock.spend(50);
      gate.leave();
    }
  });

  it("lets a burst through up to a turn's count, then a few per later turn, in arrival order", async () => {
    const clock = manualClock();
    const gate = new StartGate({ sliceMs: 5, burst: 4, now: clock.now });
    const started: number[] = [];
    const waits: Array<Promise<void>> = [];
    for (let call = 0; call < 40; call++) {
      const turn = gate.enter();
      const start = () => {
        started.push(call);
        clock.spend(1);
      };
      if (turn === undefined) start();
      else waits.push(turn.then(start));
    }
    // Four under the burst size, then a first turn's count (the burst size again); the rest wait.
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(gate.waiting).toBe(32);

    // A later turn lets some through; a call arriving meanwhile queues behind the waiting ones.
    await nextTurn();
    const afterOneTurn = started.length;
    expect(afterOneTurn).toBeGreaterThan(8);
    expect(afterOneTurn).toBeLessThan(40);
    const late = gate.enter();
    expect(late).toBeInstanceOf(Promise);
    waits.push(
      (late as Promise<void>).then(() => {
        started.push(40);
      }),
    );

    await Promise.all(waits);
    expect(started).toEqual(Array.from({ length: 41 }, (_, i) => i));
    expect(gate.waiting).toBe(0);
  });

  it('stops letting a burst through once its turn has spent the slice', () => {
    const clock = manualClock();
    const gate = new StartGate({ sliceMs: 5, burst: 4, now: clock.now });
    const started: number[] = [];
    for (let call = 0; call < 20; call++) {
      if (gate.enter() === undefined) {
        started.push(call);
        clock.spend(2);
      }
    }
    // Four under the burst size; then the turn begins, and after 6 ms of it (three starts) no more.
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(gate.waiting).toBe(13);
  });

  it('adapts how many one turn lets through to how long the last turn took', async () => {
    const clock = manualClock();
    const gate = new StartGate({ sliceMs: 10, burst: 0, now: clock.now });
    const perTurn: number[] = [];
    let thisTurn = 0;
    const waits: Array<Promise<void>> = [];
    for (let call = 0; call < 200; call++) {
      const turn = gate.enter();
      if (turn === undefined) clock.spend(2);
      else
        waits.push(
          turn.then(() => {
            thisTurn += 1;
            clock.spend(2); // each start takes 2 ms: five fit in a 10 ms slice
          }),
        );
    }
    while (gate.waiting > 0) {
      await nextTurn();
      perTurn.push(thisTurn);
      thisTurn = 0;
    }
    await Promise.all(waits);
    // One went on in the first turn and took 2 ms: five per later turn (10 ms / 2 ms), never more.
    expect(perTurn[0]).toBe(5);
    expect(Math.max(...perTurn)).toBeLessThanOrEqual(5);
    expect(perTurn.filter((n) => n === 5).length).toBeGreaterThan(perTurn.length / 2);
  });

  it('opens again in a later turn once the burst has passed, with its calls still waiting for payment', async () => {
    const clock = manualClock();
    const gate = new StartGate({ sliceMs: 5, burst: 2, now: clock.now });
    const waits: Array<Promise<void>> = [];
    for (let call = 0; call < 20; call++) {
      const turn = gate.enter();
      clock.spend(1);
      if (turn !== undefined) waits.push(turn);
    }
    await Promise.all(waits);
    // None of the 20 has left (each waits for its payment), but their starts are over.
    await nextTurn();
    await nextTurn();
    expect(gate.enter()).toBeUndefined();
    clock.spend(1);
    expect(gate.enter()).toBeUndefined();
  });
});
