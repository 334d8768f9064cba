"""Workspace configuration: defaults, pyproject.toml vs funcforge.toml, warnings and type errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from funcforge.config import Config, ConfigError, TrainConfig, config_schema, load_config
from funcforge.errors import UserError


def test_defaults_when_no_configuration_exists(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config.root == tmp_path.resolve()
    assert config.tools == ["tools/**/*.py"]
    assert config.traces == ["traces/**/*.jsonl"]
    assert config.state_dir == ".funcforge" and config.state_path == tmp_path / ".funcforge"
    assert config.proposals_path == tmp_path / ".funcforge" / "proposals"
    assert config.model == "gpt-4o" and config.base_url is None
    assert config.train == TrainConfig()
    assert config.source is None and config.warnings == []
    assert config.describe_source() == f"no funcforge configuration in {tmp_path}; using defaults"


def test_pyproject_without_a_funcforge_table_means_defaults(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    config = load_config(tmp_path)
    assert config.source is None and config.tools == ["tools/**/*.py"]


def test_pyproject_tool_funcforge(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[project]\nname = "agent"\n\n[tool.funcforge]\ntools = ["src/tools/*.py"]\n'
        'traces = ["logs/**/*.jsonl", "chats/*.json"]\nstate_dir = ".ff"\nmodel = "llama3"\n'
        'base_url = "http://127.0.0.1:11434/v1"\nerror_rate_warning = 1\n'
        '[tool.funcforge.formats]\n"chats/*.json" = "openai-chat-json"\n'
    )
    config = load_config(tmp_path)
    assert config.source == path
    assert config.describe_source() == f"configuration from {path}"
    assert config.tools == ["src/tools/*.py"]
    assert config.traces == ["logs/**/*.jsonl", "chats/*.json"]
    assert config.formats == {"chats/*.json": "openai-chat-json"}
    assert (config.state_dir, config.model) == (".ff", "llama3")
    assert config.base_url == "http://127.0.0.1:11434/v1"
    assert config.error_rate_warning == 1  # an integer is a number
    assert config.warnings == []


def test_funcforge_toml_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.funcforge]\nmodel = "from-pyproject"\n')
    (tmp_path / "funcforge.toml").write_text('model = "from-funcforge-toml"\n')
    config = load_config(tmp_path)
    assert config.model == "from-funcforge-toml"
    assert config.source == tmp_path / "funcforge.toml"


def test_funcforge_toml_may_also_use_the_tool_table(tmp_path: Path) -> None:
    (tmp_path / "funcforge.toml").write_text('[tool.funcforge]\nmodel = "m"\n')
    assert load_config(tmp_path).model == "m"


def test_a_single_glob_string_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "funcforge.toml").write_text('tools = "agent/tools.py"\n')
    assert load_config(tmp_path).tools == ["agent/tools.py"]


def test_nested_train_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.funcforge]\npatience = 4\n\n[tool.funcforge.train]\n"
        'tasks = "tasks.jsonl"\nepochs = 3\nagent = "react"\ntest_fraction = 0.25\n'
    )
    config = load_config(tmp_path)
    assert config.patience == 4
    assert config.train.tasks == "tasks.jsonl"
    assert (config.train.epochs, config.train.agent, config.train.test_fraction) == (
        3,
        "react",
        0.25,
    )
    assert config.train.patience == TrainConfig().patience  # untouched keys keep defaults


def test_unknown_keys_are_warnings_naming_key_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[tool.funcforge]\nmodel = "m"\nspeed = 3\n\n[tool.funcforge.train]\nepochz = 2\n'
    )
    config = load_config(tmp_path)
    assert config.model == "m"
    assert config.warnings == [
        f"{path}:3: unknown key 'speed' ignored",
        f"{path}:6: unknown key 'train.epochz' ignored",
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('patience = "ten"', "'patience' must be integer, got str 'ten'"),
        ("traces = 3", "'traces' must be list of string, got int 3"),
        ('traces = ["a", 3]', "'traces' must be list of string"),
        ("epochs_ok = 1\nmax_trials = true", "'max_trials' must be integer, got bool True"),
        ('tie_rule = "sometimes"', "'tie_rule' must be 'not-improvement' or 'improvement'"),
        ("base_url = 3", "'base_url' must be string (optional), got int 3"),
        ('error_rate_warning = "high"', "'error_rate_warning' must be number"),
        ('formats = ["a"]', "'formats' must be table of string"),
    ],
)
def test_wrong_types_are_errors_with_file_line_and_expected_type(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(f'[project]\nname = "x"\n\n[tool.funcforge]\n\n{line}\n')
    key_line = 6 + line.count("\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(f"{path}:{key_line}: {message}")
    assert isinstance(info.value, UserError)


def test_a_table_key_given_a_value_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "funcforge.toml"
    path.write_text("model = 'm'\ntrain = 3\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: 'train' must be a table$"):
        load_config(tmp_path)


def test_nested_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.funcforge.train]\nepochs = "many"\n')
    with pytest.raises(ConfigError, match=r"pyproject.toml:2: 'train.epochs' must be integer"):
        load_config(tmp_path)


def test_invalid_toml_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "funcforge.toml"
    path.write_text("model = \n")
    with pytest.raises(ConfigError, match=rf"^{path}:1: not valid TOML"):  # file:line
        load_config(tmp_path)


def test_overrides_apply_last_with_the_same_checks(tmp_path: Path) -> None:
    (tmp_path / "funcforge.toml").write_text('model = "m"\ntraces = ["t/*.jsonl"]\n')
    config = load_config(tmp_path, {"model": "override", "base_url": "http://127.0.0.1:1/v1"})
    assert (config.model, config.base_url, config.traces) == (
        "override",
        "http://127.0.0.1:1/v1",
        ["t/*.jsonl"],  # not given: the file's value stays
    )
    with pytest.raises(ConfigError, match=r"^<settings>: 'model' must be string"):
        load_config(tmp_path, {"model": 5})
    assert load_config(tmp_path, {"colour": "red"}).warnings == [
        "<settings>: unknown key 'colour' ignored"
    ]


def test_schema_lists_every_key_with_its_type() -> None:
    schema = config_schema()
    assert schema["tools"] == "list of string"
    assert schema["base_url"] == "string (optional)"
    assert schema["train.epochs"] == "integer"
    assert schema["tie_rule"] == "'not-improvement' or 'improvement'"
    assert "root" not in schema and "train" not in schema and "warnings" not in schema


def test_config_is_a_plain_dataclass_with_defaults() -> None:
    assert Config().traces == ["traces/**/*.jsonl"]


def test_wrong_type_points_at_the_funcforge_table_not_another(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ntools = 1\n\n[tool.funcforge]\nmodel = "m"\ntools = 3\n'
    )
    import pytest

    from funcforge.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"pyproject.toml:7: 'tools' must be list of string"):
        load_config(tmp_path)
