"""The rewrite engine on one very long tool file (issue 16): wall time per action.

A file of N small functions (5 lines each, most lines repeated: blank lines,
`return y`) is extracted, then one function in the middle is revised, one is
removed, and one is added with an import; each action's LSP edits are
computed as the editor would apply them. Figures, not a timed test.

    python3 benchmarks/rewrite_long.py [--functions N]   # default 5000 (30,000 lines)
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "server"))

from funcforge.toolset.action import Action
from funcforge.toolset.extract import extract_functions
from funcforge.toolset.rewrite import apply_action, apply_edits, minimal_edits


def _timed(label: str, fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    print(f"{label:28} {time.perf_counter() - start:7.2f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=5000)
    n = parser.parse_args().functions
    source = "".join(
        f"def f{i}(x: int) -> int:\n    '''Doc {i}.'''\n    y = x + {i}\n    return y\n\n\n"
        for i in range(n)
    )
    print(f"{n} functions, {source.count(chr(10))} lines")
    _timed("extract", lambda: extract_functions(source, "tools/long.py"))
    mid = f"f{n // 2}"
    actions = {
        "revise (middle)": Action("revise_function", mid, code=f"def {mid}(x):\n    return 0\n"),
        "remove (middle)": Action("remove_function", mid),
        "add (with an import)": Action(
            "add_function", "dump", code="import json\n\ndef dump(x):\n    return json.dumps(x)\n"
        ),
    }
    for label, action in actions.items():
        new = _timed(label, lambda a=action: apply_action(source, a, "tools/long.py"))
        edits = _timed("  its edits", lambda new=new: minimal_edits(source, new))
        assert apply_edits(source, edits) == new


if __name__ == "__main__":
    main()
