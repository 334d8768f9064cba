import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exitMessage, RestartBudget, StderrTail } from '../src/crashPolicy';

describe('restart budget', () => {
  it('allows a few restarts, then gives up within the window', () => {
    const budget = new RestartBudget(2, 1000);
    assert.equal(budget.allow(0), true);
    assert.equal(budget.allow(100), true);
    assert.equal(budget.allow(200), false);
  });

  it('forgets crashes older than the window', () => {
    const budget = new RestartBudget(2, 1000);
    assert.equal(budget.allow(0), true);
    assert.equal(budget.allow(500), true);
    assert.equal(budget.allow(1200), true);
    assert.equal(budget.allow(1300), false);
    assert.equal(budget.allow(2600), true);
  });
});

describe('stderr tail', () => {
  it('keeps the last line of what the process wrote, across chunks', () => {
    const tail = new StderrTail(64);
    tail.push('Traceback (most recent call last):\n  File "x"\nModuleNotFo');
    tail.push("undError: No module named 'lsprotocol'\n");
    assert.equal(tail.lastLine(), "ModuleNotFoundError: No module named 'lsprotocol'");
    tail.push('x'.repeat(100));
    assert.equal(tail.lastLine(), 'x'.repeat(64));
    assert.equal(new StderrTail().lastLine(), '');
  });

  it('says how and when the server exited', () => {
    assert.equal(
      exitMessage('start-up', 1, null, 'ImportError: x'),
      'the funcforge server exited with code 1 during start-up: ImportError: x. See "funcforge: Show logs".',
    );
    assert.equal(
      exitMessage('running', null, 'SIGKILL', ''),
      'the funcforge server exited on signal SIGKILL while running. See "funcforge: Show logs".',
    );
    assert.match(exitMessage('running', undefined, undefined, ''), /exited unexpectedly while running/);
  });
});
