/**
 * vscode-languageclient registers a VS Code command for every command the
 * server lists in `executeCommandProvider`; one that this extension already
 * registers (say `funcforge.previewProposal`, which the client handles) would
 * make that registration throw and the start fail. This splits the list. Pure.
 */

export function splitServerCommands(
  listed: readonly string[],
  ours: readonly string[],
): { keep: string[]; dropped: string[] } {
  const mine = new Set(ours);
  return {
    keep: listed.filter((c) => !mine.has(c)),
    dropped: listed.filter((c) => mine.has(c)),
  };
}
