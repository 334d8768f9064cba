"""The rewrite engine and schema extraction on the standard library (issue 16).

For every public top-level function of every stdlib file Python compiles:
a no-op revise (the function replaced by its own code) must give the file
back byte for byte, and a remove must leave a file that still compiles.
Also reports extraction CPU time and how many tools got `$defs` or schema
hints. Figures, not a timed test.

    python3 benchmarks/rewrite_stdlib.py [--every N]   # N: take every Nth file (default 1)
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import sysconfig
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "server"))

from funcforge.toolset.action import Action
from funcforge.toolset.extract import extract_functions
from funcforge.toolset.rewrite import RewriteError, apply_action
from funcforge.toolset.source import SourceDecodeError, ToolsetSyntaxError, decode_source
from funcforge.toolset.types import workspace_loader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="take every Nth file")
    args = parser.parse_args()
    root = pathlib.Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)
    files = files[:: max(1, args.every)]
    loader = workspace_loader(root)
    counts = dict.fromkeys(("files", "functions", "noop", "removed", "defs", "hints", "refused"), 0)
    failures: list[str] = []
    extract_cpu = 0.0
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:
            text = decode_source(path.read_bytes(), rel)[0]
            start = time.process_time()
            specs = extract_functions(text, rel, loader)
            extract_cpu += time.process_time() - start
        except (ToolsetSyntaxError, SourceDecodeError):
            continue  # Python itself refuses it (lib2to3 test data, bad encodings)
        counts["files"] += 1
        for spec in specs:
            counts["functions"] += 1
            counts["defs"] += "$defs" in spec.parameters
            counts["hints"] += bool(spec.schema_hints)
            try:
                same = apply_action(
                    text, Action("revise_function", spec.name, "", {}, [], spec.code), rel
                )
                counts["noop"] += same == text
                if same != text:
                    failures.append(f"{rel}: {spec.name}: no-op revise changed the file")
                removed = apply_action(text, Action("remove_function", spec.name), rel)
                compile(removed, rel, "exec", dont_inherit=True)
                counts["removed"] += 1
            except RewriteError as exc:
                counts["refused"] += 1
                failures.append(f"{rel}: {spec.name}: refused: {exc}")
            except SyntaxError as exc:
                failures.append(f"{rel}: {spec.name}: remove left a syntax error: {exc}")
    print(
        f"{counts['files']} files, {counts['functions']} public top-level functions: "
        f"no-op revise byte-identical {counts['noop']}/{counts['functions']}, "
        f"remove compiles {counts['removed']}/{counts['functions']}, "
        f"refused {counts['refused']}; tools with $defs {counts['defs']}, "
        f"with schema hints {counts['hints']}; extraction CPU {extract_cpu:.1f} s"
    )
    for line in failures[:20]:
        print("  " + line)


if __name__ == "__main__":
    main()
