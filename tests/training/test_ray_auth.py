"""When funcforge turns Ray's token mode on before joining a cluster (no Ray needed)."""

from __future__ import annotations

from pathlib import Path

from funcforge.training.executor import ray_auth_mode


def test_a_token_in_the_default_place_turns_token_mode_on(tmp_path: Path) -> None:
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("t")
    assert ray_auth_mode({}, tmp_path) == "token"


def test_a_token_in_the_environment_or_at_a_named_path_turns_it_on(tmp_path: Path) -> None:
    assert ray_auth_mode({"RAY_AUTH_TOKEN": "abc"}, tmp_path) == "token"
    token = tmp_path / "tok"
    token.write_text("t")
    assert ray_auth_mode({"RAY_AUTH_TOKEN_PATH": str(token)}, tmp_path) == "token"


def test_no_token_or_an_explicit_mode_is_left_alone(tmp_path: Path) -> None:
    assert ray_auth_mode({}, tmp_path) is None
    assert ray_auth_mode({"RAY_AUTH_TOKEN_PATH": str(tmp_path / "missing")}, tmp_path) is None
    assert ray_auth_mode({"RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": "abc"}, tmp_path) is None
