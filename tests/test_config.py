"""metashot.config: dataclass <-> dict <-> JSON, unknown keys rejected with a suggestion."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from metashot.config import from_dict, load_config, load_json, save_json, to_dict
from metashot.errors import UsageError


@dataclass(frozen=True, kw_only=True)
class Inner:
    hidden_size: int = 20
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass(frozen=True, kw_only=True)
class Outer:
    name: str = "run"
    learning_rate: float = 1e-3
    inner: Inner = field(default_factory=Inner)
    max_steps: int | None = None


def test_round_trip_through_json_gives_an_equal_config(tmp_path):
    config = Outer(name="x", learning_rate=0.5, inner=Inner(hidden_size=7, betas=(0.1, 0.2)), max_steps=3)
    save_json(tmp_path / "c.json", to_dict(config))
    assert load_config(Outer, tmp_path / "c.json") == config
    assert load_json(tmp_path / "c.json")["inner"]["betas"] == [0.1, 0.2]


def test_int_for_a_float_field_is_coerced():
    assert from_dict(Outer, {"learning_rate": 1}).learning_rate == 1.0
    assert isinstance(from_dict(Outer, {"learning_rate": 1}).learning_rate, float)


def test_unknown_key_suggests_the_closest_field():
    with pytest.raises(UsageError, match=r"Outer: unknown key 'learning_rat'; did you mean 'learning_rate'\?"):
        from_dict(Outer, {"learning_rat": 0.1})
    with pytest.raises(UsageError, match=r"Inner: unknown key 'hiden_size'; did you mean 'hidden_size'\?"):
        from_dict(Outer, {"inner": {"hiden_size": 3}})


def test_unknown_key_with_no_close_match_lists_the_known_keys():
    with pytest.raises(UsageError, match="known keys: inner, learning_rate, max_steps, name"):
        from_dict(Outer, {"zzzzzz": 1})


def test_non_object_and_malformed_json_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="expected a JSON object"):
        from_dict(Outer, [1, 2])  # type: ignore[arg-type]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match=r"bad\.json: not valid JSON"):
        load_json(bad)
    with pytest.raises(UsageError, match="file not found"):
        load_json(tmp_path / "missing.json")


def test_to_dict_rejects_non_dataclasses():
    with pytest.raises(TypeError):
        to_dict({"a": 1})
    with pytest.raises(TypeError):
        to_dict(Outer)
