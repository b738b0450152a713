"""The documented example config is the defaults, so the documentation cannot drift."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tierline.queue.policy import TIER_DEFAULTS
from tierline.router.config import ConfigError, load_settings
from tierline.tiers.model import TIERS

EXAMPLE = Path(__file__).parents[2] / "deploy" / "tierline.example.toml"


def test_example_config_states_every_default() -> None:
    documented = load_settings(EXAMPLE, env={})
    defaults = load_settings(None, env={})
    assert msgspec.structs.asdict(documented) == msgspec.structs.asdict(defaults) | {"tiers": documented.tiers}
    for tier in TIERS:
        assert documented.tier(tier) == defaults.tier(tier) == TIER_DEFAULTS[tier]


def test_example_config_names_every_setting() -> None:
    text = EXAMPLE.read_text()
    defaults = load_settings(None, env={})
    names = [*defaults.__struct_fields__, *defaults.server.__struct_fields__, *defaults.callbacks.__struct_fields__]
    missing = [name for name in names if f"{name} =" not in text and f"[{name}" not in text]
    assert missing == []


def test_environment_overrides_server_settings() -> None:
    settings = load_settings(
        None,
        env={"TIERLINE_PORT": "9100", "TIERLINE_HOST": "0.0.0.0", "TIERLINE_INSECURE": "1", "TIERLINE_API_TOKEN": "t"},
    )
    assert (settings.server.port, settings.server.host, settings.server.insecure, settings.server.api_token) == (
        9100,
        "0.0.0.0",
        True,
        "t",
    )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[tiers.vip]\nsla_target = 1.5\n", "invalid configuration in [tiers] ("),
        ("[server]\nport = 'x'\n", "invalid configuration in [server] ("),
        ("colour = 3\n", "invalid configuration: unknown key 'colour' ("),
        ("timezone = 5\n", "invalid configuration: timezone ("),
    ],
)
def test_a_bad_config_names_its_place_in_tierlines_own_words(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_settings(path, env={})
    assert str(refused.value).startswith(where)
