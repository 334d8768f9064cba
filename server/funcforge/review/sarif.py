"""SARIF 2.1.0 for `funcforge check --format sarif`: GitHub code scanning and other viewers.

Each finding is a `result` at the function's name line, in a file URI
relative to the repository root (`%SRCROOT%`), with the calls that prove it
in the message and the trace lines they were logged at as related locations.
Validated against the official OASIS schema in the tests.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from funcforge import __version__
from funcforge.review.findings import RULES, Finding

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/funcforge/funcforge"


def file_uri(path: str) -> str:
    """A repository-relative path as a relative URI reference (RFC 3986), as SARIF requires.

    A folder named `my tools`, `outils-é` or `a#b` is percent-encoded (of its
    bytes, as the file system holds them), so a viewer resolves it against the
    checkout to that file: written as is, a space is not a URI and a `#` starts
    a fragment.
    """
    return quote(os.fsencode(path), safe="/")


def _location(
    uri: str, line: int, message: str | None = None, index: int | None = None
) -> dict[str, Any]:
    loc: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": {"uri": file_uri(uri), "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": max(1, line)},
        }
    }
    if message:
        loc["message"] = {"text": message}
    if index is not None:
        loc["id"] = index
    return loc


def _ref_location(prefix: str, ref: str, index: int) -> dict[str, Any] | None:
    file, _, line = ref.rpartition(":")
    if not file or not line.isdigit():
        return None
    return _location(prefix + file, int(line), "logged here", index)


def sarif_log(
    findings: Sequence[Finding], prefix: str = "", base: str = "HEAD", head: str | None = None
) -> dict[str, Any]:
    """The SARIF log object; `prefix`: the workspace folder relative to the repository root."""
    rule_ids = [RULES[k][0] for k in RULES]
    rules = [
        {
            "id": rule_id,
            "name": kind.replace("_", "-"),
            "shortDescription": {"text": text},
            "defaultConfiguration": {"level": level},
            "helpUri": INFO_URI,
        }
        for kind, (rule_id, level, text) in RULES.items()
    ]
    results = []
    for f in findings:
        text = f.message
        if f.calls:
            text += "\n" + "\n".join(f"- {c}" for c in f.calls)
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": rule_ids.index(f.rule),
            "level": f.level,
            "message": {"text": text},
            "partialFingerprints": {
                "funcforgeFunction/v1": f"{f.rule}:{f.file or ''}:{f.function or ''}"
            },
        }
        if f.file:
            result["locations"] = [_location(prefix + f.file, f.line)]
        related = [
            loc
            for i, ref in enumerate(f.refs)
            if (loc := _ref_location(prefix, ref, i + 1)) is not None
        ]
        if related:
            result["relatedLocations"] = related
        results.append(result)
    compared = f"{base}..{head}" if head else f"{base}..working tree"
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "funcforge",
                        "version": __version__,
                        "informationUri": INFO_URI,
                        "rules": rules,
                    }
                },
                # No automationDetails: GitHub's upload-sarif sets its `category`
                # only where the log has none, and an id made of the compared refs
                # ("funcforge/check/origin/main..") gave each base branch its own
                # category, so alerts of another base were never closed.
                "properties": {"comparison": compared, "base": base, "head": head},
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "commandLine": f"funcforge check --base {base}"
                        + (f" --head {head}" if head else ""),
                    }
                ],
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }
