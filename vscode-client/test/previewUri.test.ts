import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROPOSAL_SCHEME } from '../src/constants';
import { decodePreviewQuery, encodePreviewUri, type PreviewRef } from '../src/previewUri';

describe('proposal preview URIs', () => {
  const refs: PreviewRef[] = [
    { id: '2f1c9e', path: 'tools/units.py', side: 'new' },
    { id: 'a b&c=d', path: 'tools/my file #1?.py', side: 'old' },
    { id: 'ü', path: 'werkzeug/größe%20.py', side: 'new' },
  ];

  it('round-trips id, path and side through the query', () => {
    for (const ref of refs) {
      const parts = encodePreviewUri(ref);
      assert.equal(parts.scheme, PROPOSAL_SCHEME);
      assert.deepEqual(decodePreviewQuery(parts.query), ref);
    }
  });

  it('survives serialisation as a URI string', () => {
    for (const ref of refs) {
      const parts = encodePreviewUri(ref);
      // As vscode.Uri.toString() does: each path segment encoded, the query as made.
      const encodedPath = parts.path.split('/').map(encodeURIComponent).join('/');
      const text = `${parts.scheme}:${encodedPath}?${parts.query}`;
      const parsed = new URL(text);
      assert.equal(parsed.protocol, `${PROPOSAL_SCHEME}:`);
      assert.deepEqual(decodePreviewQuery(parsed.search.slice(1)), ref);
    }
  });

  it("keeps the file's name, so the diff editor picks the language", () => {
    assert.equal(encodePreviewUri(refs[0]).path, '/2f1c9e/tools/units.py');
    assert.equal(encodePreviewUri({ id: 'x', path: '\\abs\\t.py', side: 'new' }).path, '/x/abs/t.py');
  });

  it('rejects queries it did not make', () => {
    assert.equal(decodePreviewQuery(''), undefined);
    assert.equal(decodePreviewQuery('id=1'), undefined);
    assert.equal(decodePreviewQuery('id=1&path=a.py&side=both'), undefined);
    assert.deepEqual(decodePreviewQuery('id=1&path=a.py'), { id: '1', path: 'a.py', side: 'new' });
  });
});
