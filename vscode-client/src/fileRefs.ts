/**
 * The server names files as URIs (`file:///...`), absolute paths, or paths
 * relative to the workspace root; this sorts them out. Pure.
 */

export type FileRef = { kind: 'uri'; uri: string } | { kind: 'path'; path: string };

export function resolveFileRef(ref: string, root: string | undefined): FileRef {
  if (/^[A-Za-z][A-Za-z0-9+.-]+:\/\//.test(ref)) {
    return { kind: 'uri', uri: ref };
  }
  if (ref.startsWith('/') || /^[A-Za-z]:[\\/]/.test(ref) || root === undefined) {
    return { kind: 'path', path: ref };
  }
  const base = root.replace(/[\\/]+$/, '');
  return { kind: 'path', path: `${base}/${ref.replace(/^\.\//, '')}` };
}
