/**
 * URIs of the read-only proposal documents (`funcforge-proposal:`): the path
 * keeps the file's name (so the diff editor picks its language) and the query
 * carries the proposal id, the file's workspace path and the side shown. Pure:
 * `vscode.Uri.from` and `uri.query` do the rest.
 */

import { PROPOSAL_SCHEME } from './constants';

export type PreviewSide = 'old' | 'new';

export interface PreviewRef {
  id: string;
  /** The file's path as the server names it (`files[].path`). */
  path: string;
  side: PreviewSide;
}

export interface UriParts {
  scheme: string;
  path: string;
  query: string;
}

/** The parts of the URI of one side of one file of a proposal. */
export function encodePreviewUri(ref: PreviewRef): UriParts {
  const name = ref.path.replace(/\\/g, '/').replace(/^\/+/, '');
  const query = new URLSearchParams({ id: ref.id, path: ref.path, side: ref.side }).toString();
  return { scheme: PROPOSAL_SCHEME, path: `/${ref.id}/${name}`, query };
}

/** Reads a URI's query back; `undefined` when it was not made by `encodePreviewUri`. */
export function decodePreviewQuery(query: string): PreviewRef | undefined {
  const params = new URLSearchParams(query);
  const id = params.get('id');
  const path = params.get('path');
  const side = params.get('side') ?? 'new';
  if (!id || !path || (side !== 'old' && side !== 'new')) {
    return undefined;
  }
  return { id, path, side };
}
