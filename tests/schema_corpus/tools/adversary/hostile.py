"""Hostile but realistic tool functions (issue 16's adversary): the cousins of the framework styles.

Self-contained (stdlib, typing_extensions and pydantic only), so
`tests/unit/test_schema_oracle.py` can also run it through pydantic (the MCP
SDK) and compare; funcforge itself only reads it.
"""

from __future__ import annotations

import datetime as dt
import os
import typing as t
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum, IntEnum, IntFlag, StrEnum, auto
from pathlib import Path
from typing import Annotated as A
from typing import Any, ClassVar, Generic, Literal, Optional, TypeVar, Union
from uuid import UUID

import pydantic
from pydantic import BaseModel, Field, HttpUrl, PrivateAttr, SecretStr, StringConstraints, conint, constr
from typing_extensions import Annotated, NotRequired, Required, TypedDict

DEFAULT_LIMIT = 20
MAX_PAGE: int = 100
DEFAULT_MODEL = "small"
Currency = Literal["EUR", "USD", "GBP"]
Count = Annotated[int, Field(ge=0)]


class Priority(str, Enum):
    """How urgent a ticket is."""

    LOW = "low"
    HIGH = "high"


class Level(IntEnum):
    DEBUG = 10
    INFO = 20


class Step(Enum):
    FIRST = auto()
    SECOND = auto()
    TENTH = 10
    ELEVENTH = auto()


class Mode(StrEnum):
    FAST = auto()
    SLOW_AND_SAFE = auto()


class Shade(str, Enum):
    LIGHT = auto()
    DARK = auto()


class Odd(Enum):
    TEXT = "a"
    ONE = 1
    HALF = 0.5


class Color(Enum):
    RED = "red"
    CRIMSON = "red"  # an alias: one value
    GREEN = "green"

    def label(self) -> str:
        return self.value.title()


class Perm(IntFlag):
    R = 4
    W = 2


class Line(TypedDict):
    sku: str
    qty: int
    note: NotRequired[str]


class Options(TypedDict, total=False):
    verbose: bool
    level: Required[int]


class ChildOptions(Options):
    dry_run: bool
    tag: NotRequired[str]


class Price(BaseModel):
    amount: Decimal
    currency: Currency = "EUR"


class Cat(BaseModel):
    kind: Literal["cat"] = "cat"
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog"] = "dog"
    good: bool = True


class TreeNode(BaseModel):
    """A node of a tree; it contains itself."""

    name: str
    children: list[TreeNode] = []
    parent: Optional[TreeNode] = None


class Folder(BaseModel):
    files: list[File] = []


class File(BaseModel):
    name: str
    folder: Optional[Folder] = None


class Query(BaseModel):
    text: str = Field(min_length=1, description="What to look for")
    limit: Optional[int]  # no default: required, though it may be null
    offset: int | None = None
    sort: Optional[str] = "asc"
    tags: list[str] = Field(default_factory=list, max_length=3)
    ratio: float = Field(0.5, gt=0, lt=1, multiple_of=0.25)
    page: int = Field(1, le=MAX_PAGE)


class Service(BaseModel):
    name: str
    _cache: dict = {}
    _token: str = PrivateAttr(default="")
    registry: ClassVar[dict] = {}


class Base(BaseModel):
    x: int
    y: str = "y"


class Derived(Base):
    x: int = 5
    z: bool


@dataclass
class Box:
    w: float
    h: float = 1.0
    tags: list[str] = field(default_factory=list)
    label: str = field(default="box")
    inner: Optional[Box] = None


class filter(BaseModel):  # named like a builtin
    column: str
    value: str


class Task(BaseModel):
    class Status(str, Enum):
        OPEN = "open"
        DONE = "done"

    status: Status = Status.OPEN
    id: int


class Log(BaseModel):
    level: Level = Level.INFO
    msg: str


class Alpha(BaseModel):
    kind: Literal["a"]
    x: int


class Beta(BaseModel):
    kind: Literal["b"]
    y: str


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int


def create_ticket(title: str, priority: Optional[Priority] = None) -> str:
    """Open a ticket in the tracker.

    Note:
        Search for a duplicate first; the tracker refuses exact duplicates.

    Args:
        title: One line saying what is wrong.
        priority: How urgent it is; leave empty to let triage decide.
    """
    return ""


def set_log_level(level: Optional[Level] = Level.INFO) -> str:
    """Change how much the service logs."""
    return ""


def add_lines(lines: list[Line]) -> str:
    """Add lines to the open basket."""
    return ""


def update_prices(prices: dict[str, Price]) -> str:
    """Set prices by SKU."""
    return ""


def adopt(pet: Union[Cat, Dog], others: list[Cat | Dog] = []) -> str:
    """Adopt a pet (and maybe others)."""
    return ""


def build_tree(root: TreeNode) -> str:
    """Store a tree of nodes."""
    return ""


def index_file(f: File) -> str:
    """Index a file in its folder."""
    return ""


def run_job(mode: Literal["fast", "slow"], opts: ChildOptions, n: Annotated[int, Field(ge=1, description="How many runs")] = 1) -> str:
    """Run the nightly job."""
    return ""


def search(q: A[str, Field(description="The query", min_length=1)], k: A[int, Field(gt=0, le=100)] = 10) -> str:
    """Search the index."""
    return ""


def pick(choice: Literal["auto", 0, 1, True, None] = "auto") -> str:
    """Pick a setting: a name, a number, a flag or nothing."""
    return ""


def count_items(n: Annotated[Count, Field(le=10, description="How many")]) -> str:
    """Count items, at most ten."""
    return ""


def open_ports(ports: list[conint(ge=1, le=65535)], tags: list[constr(max_length=8)] = []) -> str:
    """Open ports in the firewall."""
    return ""


def schedule(when: dt.datetime, day: dt.date, at: dt.time, span: dt.timedelta, id: UUID, path: Path, amount: Decimal, blob: bytes) -> str:
    """Schedule a transfer of a file."""
    return ""


def store(amount: Decimal = Decimal("1.50"), blob: bytes = b"abc", path: Path = Path("/tmp"), home: str = os.environ.get("HOME", "/")) -> str:
    """Store a blob (defaults written as calls and bytes)."""
    return ""


def call_api(a: int, *args: str, b: int = 2, **kwargs: Any) -> str:
    """Call the API with extra arguments (never shown to the model)."""
    return ""


def mix(a: int, b: str = "x", /, c: float = 1.0, *, d: bool, e: list[int] | None = None) -> str:
    """Positional-only, normal and keyword-only parameters."""
    return ""


async def fetch(url: str, timeout: float = 10.0) -> str:
    """Fetch a page (an async tool)."""
    return ""


def apply_filter(f: filter, mode: Mode = Mode.FAST) -> str:
    """Apply a filter (its class is named like a builtin)."""
    return ""


def walk(step: Step = Step.SECOND, shade: Shade = Shade.DARK, odd: Odd = Odd.HALF, color: Color = Color.CRIMSON, perm: Perm = Perm.R) -> str:
    """Enums with auto(), mixed values, aliases and flags."""
    return ""


def configure(opts: Options, q: Query, s: Service, d: Derived, box: Box) -> str:
    """Configure the service."""
    return ""


def code_lookup(code: Annotated[str, StringConstraints(min_length=2, max_length=3, pattern=r"^[A-Z]+$")]) -> str:
    """Look up a country code."""
    return ""


def list_items(limit: int = DEFAULT_LIMIT, model: str = DEFAULT_MODEL, page: int = Field(1, ge=1, le=MAX_PAGE), mode: Literal["small", "large"] = DEFAULT_MODEL) -> str:
    """List items, defaults from module constants."""
    return ""


def union_literals(x: Literal["a"] | Literal["b"] = "a", y: Optional[Literal[1, 2]] = None) -> str:
    """Unions of literals."""
    return ""


def dotted(a: t.List[t.Optional[int]], b: t.Annotated[int, pydantic.Field(ge=1)] = 1) -> str:
    """Typing and pydantic through module names."""
    return ""


def close_task(task: Task, status: Task.Status = Task.Status.DONE) -> str:
    """Close a task (an enum defined inside the model)."""
    return ""


def write_log(log: Log, ids: list[UUID] | None = None) -> str:
    """Write a log line."""
    return ""


def login(token: SecretStr, url: HttpUrl) -> str:
    """Log in to the service."""
    return ""


def handle(item: Annotated[Union[Alpha, Beta], Field(discriminator="kind")]) -> str:
    """Handle an item of one of two kinds."""
    return ""


def first_page(p: Page[int]) -> str:
    """Read a page of a generic model (its parameter is not applied)."""
    return ""


def numbers(a: int = -1, b: float = 1e-3, c: int = 10**6, d: int = 0x10, e: float = Field(default=2.5, ge=None)) -> str:
    """Numeric defaults: negative, exponent, computed, hex; a bound of None is no bound."""
    return ""


def read_file(ﬁle: str, ｍode: str = "r") -> str:
    """Read a file.

    Args:
        ﬁle: Path of the file.
    """
    return ""


class Msg(BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)


@dataclass(kw_only=True)
class Job:
    name: str
    retries: int = 3
    level: Level = Level.DEBUG


def send(msg: Msg, cc: Optional[list[Msg]] = None) -> str:
    """Send a message (a field alias is the key pydantic sends)."""
    return ""


def run(job: Job, jobs: dict[str, list[Job]] = {}) -> str:
    """Run a job; a keyword-only dataclass."""
    return ""


def threshold(x: Annotated[Optional[int], Field(ge=0, description="At least zero")] = None, y: Annotated[float, Field(allow_inf_nan=False)] = 1.0) -> str:
    """A constraint on a nullable number."""
    return ""


def pairs(p: tuple[int, str] = (1, "a"), q: tuple[float, ...] = (), r: frozenset[str] = frozenset()) -> str:
    """Tuples and frozensets with defaults."""
    return ""


def money(amount: Annotated[Decimal, Field(max_digits=6, decimal_places=2)], currency: Optional[Currency] = None, rate: float = Field(default=1.0, gt=0, description="Exchange rate")) -> str:
    """Convert an amount of money."""
    return ""
