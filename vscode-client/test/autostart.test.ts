import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pyprojectUsesFuncforge, shouldAutoStart, type WorkspaceSigns } from '../src/autostart';

const none: WorkspaceSigns = {
  hasFuncforgeToml: false,
  hasStateDir: false,
  hasDefaultLayout: false,
  hasSettings: false,
};

describe('starting the server on activation', () => {
  it('starts only in a workspace that uses funcforge', () => {
    assert.equal(shouldAutoStart(none), false);
    assert.equal(shouldAutoStart({ ...none, pyproject: '[project]\nname = "x"\n' }), false);
    assert.equal(shouldAutoStart({ ...none, hasFuncforgeToml: true }), true);
    assert.equal(shouldAutoStart({ ...none, hasStateDir: true }), true);
    assert.equal(shouldAutoStart({ ...none, hasDefaultLayout: true }), true);
    assert.equal(shouldAutoStart({ ...none, hasSettings: true }), true);
    assert.equal(
      shouldAutoStart({ ...none, pyproject: '[project]\nname = "x"\n\n[tool.funcforge]\nmodel = "m"\n' }),
      true,
    );
  });

  it('reads [tool.funcforge] tables, not mentions', () => {
    assert.equal(pyprojectUsesFuncforge('[tool.funcforge.train]\nepochs = 3\n'), true);
    assert.equal(pyprojectUsesFuncforge('  [tool.funcforge]  # config\n'), true);
    assert.equal(pyprojectUsesFuncforge('# see [tool.funcforge]\n'), false);
    assert.equal(pyprojectUsesFuncforge('dependencies = ["funcforge"]\n'), false);
    assert.equal(pyprojectUsesFuncforge('[tool.funcforgery]\n'), false);
  });
});
