"""JUnit XML for `funcforge check --format junit`: one test case per checked function.

CI systems (GitLab, Jenkins, Azure Pipelines, GitHub test reporters) show a
function whose logged calls regressed as a failed test, with the calls in the
failure text; a tool file that no longer loads is an errored test case.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree as ET

from funcforge.review.findings import Finding


def junit_xml(findings: Sequence[Finding], checked: Sequence[tuple[str, str]]) -> str:
    """`checked`: (function, file) pairs that were replay-checked; findings say how each went."""
    suite = ET.Element("testsuite", name="funcforge check")
    cases = 0
    failures = errors = 0
    by_function: dict[str | None, list[Finding]] = {}
    for f in findings:
        by_function.setdefault(f.function, []).append(f)
    for function, file in checked:
        cases += 1
        case = ET.SubElement(
            suite, "testcase", classname=f"funcforge.{file}", name=function, file=file
        )
        mine = by_function.get(function, [])
        bad = [f for f in mine if f.level == "error"]
        if bad:
            failures += 1
            failure = ET.SubElement(case, "failure", message=bad[0].message, type=bad[0].rule)
            failure.text = "\n".join(
                [f.message for f in bad] + [f"  {c}" for f in bad for c in f.calls]
            )
        notes = [f for f in mine if f.level != "error"]
        if notes:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(
                [f.message for f in notes] + [f"  {c}" for f in notes for c in f.calls]
            )
    for f in findings:
        if f.kind == "broken":
            cases += 1
            errors += 1
            case = ET.SubElement(
                suite, "testcase", classname=f"funcforge.{f.file}", name=f"{f.file} loads"
            )
            err = ET.SubElement(case, "error", message=f.message, type=f.rule)
            err.text = f.message
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    root = ET.Element(
        "testsuites", name="funcforge", tests=str(cases), failures=str(failures), errors=str(errors)
    )
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
