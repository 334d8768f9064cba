import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveFileRef } from '../src/fileRefs';

describe('file references from the server', () => {
  it('keeps URIs and absolute paths, and resolves relative paths against the root', () => {
    assert.deepEqual(resolveFileRef('file:///w/tools/u.py', '/w'), {
      kind: 'uri',
      uri: 'file:///w/tools/u.py',
    });
    assert.deepEqual(resolveFileRef('/w/tools/u.py', '/w'), { kind: 'path', path: '/w/tools/u.py' });
    assert.deepEqual(resolveFileRef('C:\\w\\u.py', 'C:\\w'), { kind: 'path', path: 'C:\\w\\u.py' });
    assert.deepEqual(resolveFileRef('tools/u.py', '/w/'), { kind: 'path', path: '/w/tools/u.py' });
    assert.deepEqual(resolveFileRef('./tools/u.py', '/w'), { kind: 'path', path: '/w/tools/u.py' });
    assert.deepEqual(resolveFileRef('tools/u.py', undefined), { kind: 'path', path: 'tools/u.py' });
  });
});
