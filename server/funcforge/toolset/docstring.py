"""Docstrings: the tool's description and each parameter's text, as the model should see them.

Parameters are read with docstring_parser (Google, NumPy, Sphinx/reST and
Epydoc, style detected); funcforge's own tolerant readers fill in what it
misses, such as Google `Args:` entries written at the same indent as
`Args:` (AG2's tool library writes them so).

The description is all the prose before the first real section, paragraphs
and line breaks kept: a known section title at the docstring's margin
(`Args:`, `Returns:`, a NumPy title over a `---` rule, a `:param` field)
ends it; an indented `Columns:` line inside prose, an unknown title, or a
Google admonition (`Note:`, `Warning:`, `Important:`, ...) does not
(smolagents' SQL tool lists its table's columns so; a `Note:` before
`Args:` is usually a rule the model must follow).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import docstring_parser

from funcforge.toolset.types import py_name


@dataclass
class DocInfo:
    """What a docstring says: its description and each parameter's text."""

    description: str = ""
    params: dict[str, str] = field(default_factory=dict)
    style: str = ""  # google / numpydoc / rest / epydoc, or "" when none was recognised

    @property
    def summary(self) -> str:
        """The description (its older name)."""
        return self.description


_PARAM_TITLES = (
    r"args|arguments|parameters|params|keyword args|keyword arguments|kwargs"
    r"|other parameters|other params"
)
_SECTION_TITLES = (
    _PARAM_TITLES + r"|returns?|yields?|raises?|exceptions?|except|warns?|warnings?|examples?"
    r"|notes?|see also|seealso|references?|todo|attributes|methods|receives?"
)
_GOOGLE_TITLE = re.compile(rf"^({_SECTION_TITLES})\s*:\s*$", re.IGNORECASE)
# Google admonitions: prose for the reader (napoleon renders them in the body, and
# docstring_parser keeps them in the description), so they do not end the description.
_ADMONITION = re.compile(
    r"^(notes?|warnings?|important|tip|hint|caution|attention|danger)\s*:\s*$", re.IGNORECASE
)
_GOOGLE_PARAM_TITLE = re.compile(rf"^(\s*)({_PARAM_TITLES})\s*:\s*$", re.IGNORECASE)
_NUMPY_TITLE = re.compile(rf"^({_SECTION_TITLES})$", re.IGNORECASE)
_NUMPY_PARAM_TITLE = re.compile(rf"^({_PARAM_TITLES})$", re.IGNORECASE)
_NUMPY_RULE = re.compile(r"^\s*-{3,}\s*$")
_FIELD_LINE = re.compile(r"^(:\w[^:]*:|@(param|type|keyword|kwtype|return|rtype|raise)\b)")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^\*{0,2}(\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?$")
_SPHINX_FIELD = re.compile(r"^(\s*)[:@](\w+)([^:]*):(.*)$")
_SPHINX_PARAM_KINDS = {"param", "parameter", "arg", "argument", "key", "keyword"}
_NOT_PARAMS = {"attribute", "attr", "ivar", "cvar", "var"}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _join(parts: list[str]) -> str:
    return " ".join(" ".join(parts).split())


def clean_docstring(doc: str) -> str:
    """`doc` without its indentation, like `inspect.cleandoc`, but keeping section structure.

    The indentation to remove is the closing quotes' line when it is blank
    (so `\"\"\"Args:\n        x: ...\n    \"\"\"` keeps `x` indented under
    `Args:`), else the smallest indentation after the first line.
    """
    lines = doc.expandtabs().split("\n")
    rest = [line for line in lines[1:] if line.strip()]
    margin = min((_indent(line) for line in rest), default=0)
    if len(lines) > 1 and not lines[-1].strip():
        margin = min(margin, len(lines[-1]))
    out = [lines[0].strip()] + [line[margin:].rstrip() for line in lines[1:]]
    while out and not out[-1]:
        out.pop()
    while out and not out[0]:
        out.pop(0)
    return "\n".join(out)


def _real_section(lines: list[str], i: int) -> bool:
    """True when line `i` opens a section: a known title at the docstring's margin."""
    line = lines[i]
    if not line or line[0] in " \t":
        return False
    if _GOOGLE_TITLE.match(line) and not _ADMONITION.match(line):
        return True
    if _FIELD_LINE.match(line):
        return True
    return (
        i + 1 < len(lines)
        and bool(_NUMPY_TITLE.match(line.strip()))
        and bool(_NUMPY_RULE.match(lines[i + 1]))
    )


def _description(lines: list[str]) -> str:
    out: list[str] = []
    for i, line in enumerate(lines):
        if _real_section(lines, i):
            break
        out.append(line.rstrip())
    text = "\n".join(out).strip("\n")
    return re.sub(r"\n{3,}", "\n\n", text)


def _library_params(text: str, out: dict[str, str]) -> str:
    """docstring_parser's parameter texts into `out`; returns the style it detected."""
    try:
        parsed = docstring_parser.parse(text, docstring_parser.DocstringStyle.AUTO)
    except Exception:  # ParseError, and on odd input others: the fallbacks still read it
        return ""
    for param in parsed.params:
        if param.args and param.args[0] in _NOT_PARAMS:
            continue
        for raw in (param.arg_name or "").split(","):
            name = raw.strip().split(" ")[-1].lstrip("*")
            if name.isidentifier() and param.description and param.description.strip():
                out.setdefault(name, _join([param.description]))
    return parsed.style.name.lower() if parsed.style and parsed.params else ""


def parse_docstring(doc: str | None) -> DocInfo:
    """Description and parameter descriptions of a docstring in any common style."""
    if not doc:
        return DocInfo()
    text = clean_docstring(doc)
    lines = text.split("\n")
    info = DocInfo(description=_description(lines))
    info.style = _library_params(text, info.params)
    _google_params(lines, info.params)
    _numpy_params(lines, info.params)
    _sphinx_params(lines, info.params)
    info.params = {py_name(name): text for name, text in info.params.items()}  # `ﬁle` is `file`
    return info


# --- tolerant readers (fill in what the library missed) ------------------------


def _google_params(lines: list[str], out: dict[str, str]) -> None:
    """Google `Args:` sections: entries indented under the title, or at its own indent."""
    i = 0
    while i < len(lines):
        header = _GOOGLE_PARAM_TITLE.match(lines[i])
        i += 1
        if not header:
            continue
        base = len(header.group(1))
        entry_indent: int | None = None
        name: str | None = None
        parts: list[str] = []
        while i < len(lines):
            line = lines[i]
            stripped = line.strip()
            if not stripped:
                i += 1
                if entry_indent == base:
                    break  # unindented entries end at a blank line
                continue
            if entry_indent is None:
                if _indent(line) < base:
                    break
                if _indent(line) == base and not _GOOGLE_ENTRY.match(stripped):
                    break
                entry_indent = _indent(line)
            if _indent(line) < entry_indent or (_indent(line) == base and _real_section(lines, i)):
                break
            if entry_indent > base and _indent(line) <= base:
                break
            i += 1
            m = _GOOGLE_ENTRY.match(stripped) if _indent(line) == entry_indent else None
            if m:
                if name:
                    out.setdefault(name, _join(parts))
                name, parts = m.group(1), [m.group(3)]
            elif name:
                parts.append(stripped)
        if name:
            out.setdefault(name, _join(parts))


def _numpy_params(lines: list[str], out: dict[str, str]) -> None:
    i = 0
    while i + 1 < len(lines):
        if not _NUMPY_PARAM_TITLE.match(lines[i].strip()) or not _NUMPY_RULE.match(lines[i + 1]):
            i += 1
            continue
        base = _indent(lines[i])
        i += 2
        names: list[str] = []
        parts: list[str] = []
        while i < len(lines):
            line = lines[i]
            if i + 1 < len(lines) and _NUMPY_RULE.match(lines[i + 1]) and line.strip():
                break  # the next section's title
            i += 1
            if not line.strip():
                continue
            if _indent(line) <= base:
                m = _NUMPY_ENTRY.match(line.strip())
                if not m:
                    break
                for n in names:
                    out.setdefault(n, _join(parts))
                names = [n.strip().lstrip("*") for n in m.group(1).split(",")]
                parts = []
            elif names:
                parts.append(line.strip())
        for n in names:
            out.setdefault(n, _join(parts))


def _sphinx_params(lines: list[str], out: dict[str, str]) -> None:
    name: str | None = None
    indent = 0
    parts: list[str] = []
    for line in lines:
        m = _SPHINX_FIELD.match(line)
        if m:
            if name:
                out.setdefault(name, _join(parts))
                name = None
            words = m.group(3).split()
            if m.group(2) in _SPHINX_PARAM_KINDS and words:
                name, indent, parts = words[-1].lstrip("*"), len(m.group(1)), [m.group(4)]
            continue
        if name and line.strip() and _indent(line) > indent:
            parts.append(line.strip())
        elif name and line.strip():
            out.setdefault(name, _join(parts))
            name = None
    if name:
        out.setdefault(name, _join(parts))
