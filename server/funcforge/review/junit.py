"""JUnit XML for `funcforge check --format junit`: one test case per checked function.

CI systems (GitLab, Jenkins, Azure Pipelines, GitHub test reporters) show a
function whose logged calls regressed as a failed test, with the calls in the
failure text; a tool file that no longer loads is an errored test case.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree as ET

from funcforge.review.findings import Finding


def junit_xml(
    findings: Sequence[Finding],
    checked: Sequence[tuple[str, str]],
    prefix: str = "",
    nothing: str = "no tool function changed",
) -> str:
    """`checked`: (function, file) pairs that were replay-checked; findings say how each went.

    `prefix` is the workspace's folder in the repository: `file` attributes are
    repository-relative (as SARIF's URIs), which is what GitLab and the GitHub
    JUnit reporters resolve to annotate a line. A check with nothing to check
    is one passing case named `nothing`: an empty report fails Jenkins' junit
    step ("None of the test reports contained any result").
    """
    suite = ET.Element("testsuite", name="funcforge check")
    cases = 0
    failures = errors = 0
    by_function: dict[str | None, list[Finding]] = {}
    for f in findings:
        by_function.setdefault(f.function, []).append(f)
    for function, file in checked:
        cases += 1
        case = ET.SubElement(
            suite, "testcase", classname=f"funcforge.{file}", name=function, file=prefix + file
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
                suite,
                "testcase",
                classname=f"funcforge.{f.file}",
                name=f"{f.file} loads",
                file=prefix + (f.file or ""),
            )
            err = ET.SubElement(case, "error", message=f.message, type=f.rule)
            err.text = f.message
    for f in findings:
        if f.kind == "removed" and f.function:
            cases += 1  # a warning: a passing case that says so
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"funcforge.{f.file}",
                name=f.function,
                file=prefix + (f.file or ""),
            )
            ET.SubElement(case, "system-out").text = f.message
    if not cases:
        cases += 1
        ET.SubElement(suite, "testcase", classname="funcforge", name=nothing)
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    root = ET.Element(
        "testsuites", name="funcforge", tests=str(cases), failures=str(failures), errors=str(errors)
    )
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
