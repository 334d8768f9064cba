import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { debounce } from '../src/debounce';

describe('debounce', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it('runs once, after the last of a burst of calls', () => {
    let runs = 0;
    const d = debounce(() => runs++, 500);
    d();
    mock.timers.tick(300);
    d();
    mock.timers.tick(300);
    d();
    assert.equal(runs, 0);
    assert.equal(d.pending, true);
    mock.timers.tick(499);
    assert.equal(runs, 0);
    mock.timers.tick(1);
    assert.equal(runs, 1);
    assert.equal(d.pending, false);
    mock.timers.tick(5000);
    assert.equal(runs, 1);
  });

  it('can be cancelled or flushed', () => {
    let runs = 0;
    const d = debounce(() => runs++, 500);
    d();
    d.cancel();
    mock.timers.tick(1000);
    assert.equal(runs, 0);
    d();
    d.flush();
    assert.equal(runs, 1);
    mock.timers.tick(1000);
    assert.equal(runs, 1);
    d.flush();
    assert.equal(runs, 1);
  });
});
