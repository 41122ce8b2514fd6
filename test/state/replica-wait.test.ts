/**
 * ReplicaWait's rules, with the WAIT itself in the test's hands (the Sentinel suite runs the real
 * one): one WAIT in flight, the callers that come meanwhile share the next, a short one pauses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReplicaWait } from '../../src/state/replica-wait.ts';

/** A WAIT whose answers the test gives, one call at a time. */
function scriptedWait() {
  const pending: Array<(acked: number) => void> = [];
  return {
    calls: () => pending.length,
    wait: () => new Promise<number>((resolve) => pending.push(resolve)),
    answer: (i: number, acked: number) => pending[i]!(acked),
  };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('ReplicaWait', () => {
  it('sends one WAIT at a time: callers that come while one is out share the next', async () => {
    const script = scriptedWait();
    const shorts: number[] = [];
    const wait = new ReplicaWait({
      ...script,
      replicas: 1,
      timeoutMs: 500,
      pauseMs: 10_000,
      onShort: (a) => shorts.push(a),
    });
    const first = wait.replicated();
    const burst = Array.from({ length: 20 }, () => wait.replicated());
    await turn();
    assert.equal(script.calls(), 1, 'the burst waits for the WAIT out to return');
    script.answer(0, 1);
    await first;
    await turn();
    assert.equal(script.calls(), 2, 'the burst shares one more WAIT (it covers their writes)');
    script.answer(1, 1);
    await Promise.all(burst);
    assert.deepEqual(shorts, []);
  });

  it('a short WAIT pauses waiting: its sharers and later callers are let go at once, told as short', async () => {
    let now = 0;
    const script = scriptedWait();
    const shorts: number[] = [];
    const wait = new ReplicaWait({
      ...script,
      replicas: 1,
      timeoutMs: 500,
      pauseMs: 10_000,
      onShort: (a) => shorts.push(a),
      now: () => now,
    });
    const first = wait.replicated();
    const sharers = [wait.replicated(), wait.replicated()];
    script.answer(0, 0);
    await Promise.all([first, ...sharers]);
    assert.equal(script.calls(), 1, 'no WAIT for the sharers: the replica is away');
    assert.deepEqual(shorts, [0, -1, -1]);
    now = 9_999;
    await wait.replicated();
    assert.equal(script.calls(), 1, 'paused');
    now = 10_000;
    const after = wait.replicated();
    assert.equal(script.calls(), 2, 'the pause is over: waiting again');
    script.answer(1, 1);
    await after;
    assert.deepEqual(shorts, [0, -1, -1, -1]);
  });
});
