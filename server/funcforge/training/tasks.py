"""Task files (JSON Lines: id, input, expected, split?) and the train/test split."""

from __future__ import annotations

import json
import random
from pathlib import Path

from funcforge.errors import UserError
from funcforge.training.agents import TaskSpec


def load_tasks(path: Path) -> list[TaskSpec]:
    """Read a task file; missing fields and duplicate ids are errors with file:line."""
    if not path.is_file():
        raise UserError(f"task file {path} does not exist")
    tasks: list[TaskSpec] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where}: not valid JSON: {exc.msg}") from exc
        if not isinstance(obj, dict):
            raise UserError(f"{where}: a task must be a JSON object")
        for key in ("id", "input"):
            if key not in obj:
                raise UserError(f"{where}: task has no `{key}`")
        task_id, text = obj["id"], obj["input"]
        if not isinstance(task_id, (str, int)) or not isinstance(text, str):
            raise UserError(f"{where}: `id` must be a string and `input` a string")
        task_id = str(task_id)
        if task_id in seen:
            raise UserError(
                f"{where}: duplicate task id `{task_id}` (first at line {seen[task_id]})"
            )
        seen[task_id] = number
        expected = obj.get("expected")
        split = _read_split(obj.get("split"), where)
        extra = {k: v for k, v in obj.items() if k not in ("id", "input", "expected", "split")}
        tasks.append(
            TaskSpec(
                task_id, text, None if expected is None else str(expected), split, number, extra
            )
        )
    if not tasks:
        raise UserError(f"task file {path} holds no tasks")
    return tasks


def _read_split(value: object, where: str) -> str | None:
    """A task's `split` as "train" or "test"; case and padding ignored as the store does.

    `"Test"` is the test split as a person meant it (the trace store reads it so);
    anything else that is not train or test is an error naming the line.
    """
    if value is None:
        return None
    if isinstance(value, str) and value.strip().casefold() in ("train", "test"):
        return value.strip().casefold()
    raise UserError(f'{where}: `split` must be "train" or "test", got {value!r}')


def split_tasks(
    tasks: list[TaskSpec], test_fraction: float, seed: int
) -> tuple[list[TaskSpec], list[TaskSpec]]:
    """(train, test): from the file's `split` fields when every task has one, else seeded."""
    if all(t.split for t in tasks):
        return [t for t in tasks if t.split == "train"], [t for t in tasks if t.split == "test"]
    order = sorted(tasks, key=lambda t: t.id)
    random.Random(seed).shuffle(order)
    n_test = round(len(order) * test_fraction)
    test_ids = {t.id for t in order[:n_test]}
    return [t for t in tasks if t.id not in test_ids], [t for t in tasks if t.id in test_ids]


def batch_for_epoch(
    train: list[TaskSpec], batch_size: int | None, seed: int, epoch: int
) -> list[TaskSpec]:
    """The paper's batch mode: a seeded random batch per epoch (all tasks when no size)."""
    if not batch_size or batch_size >= len(train):
        return list(train)
    rng = random.Random(f"{seed}:{epoch}")
    chosen = rng.sample(sorted(train, key=lambda t: t.id), batch_size)
    return sorted(chosen, key=lambda t: t.id)
