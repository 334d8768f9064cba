import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newProgressToken, PercentageTracker } from '../src/progressMath';

describe('progress increments', () => {
  it('turns absolute percentages into increments, never backwards or past 100', () => {
    const t = new PercentageTracker();
    assert.deepEqual(t.step(undefined, 'reading traces'), { message: 'reading traces' });
    assert.deepEqual(t.step(10, 'asking the model'), { message: 'asking the model', increment: 10 });
    assert.deepEqual(t.step(35, undefined), { increment: 25 });
    assert.deepEqual(t.step(20, 'retry'), { message: 'retry' });
    assert.deepEqual(t.step(250, undefined), { increment: 65 });
    assert.equal(t.total, 100);
    assert.deepEqual(t.step(Number.NaN, undefined), {});
  });

  it('hands out distinct tokens', () => {
    const a = newProgressToken();
    const b = newProgressToken();
    assert.notEqual(a, b);
    assert.match(a, /^funcforge-/);
  });
});
