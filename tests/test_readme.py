"""README.md's examples are true: its rule example loads and its tests pass, its config example
loads and every stage accepts its section, and its two set-up commands are what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from logtrack.cli import main
from logtrack.config import load_config
from logtrack.enrich import EnrichConfig
from logtrack.errors import ConfigError
from logtrack.identity import IdentityConfig
from logtrack.privacy import PrivacyConfig
from logtrack.rules import check_rules, run_rule_tests
from logtrack.sessions import SessionConfig

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
YAML = re.findall(r"^```yaml\n(.*?)^```", README, re.S | re.M)


def test_quick_start_commands_come_first_and_ci_runs_the_same_tests() -> None:
    shell = re.findall(r"^```sh\n(.*?)^```", README, re.S | re.M)
    assert "logtrack report sample_logs/ --rules rules/ -o reports/" in shell[0]
    assert shell[1].strip().endswith(".venv/bin/pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -e '.[test]'" in ci and ci.strip().endswith(".venv/bin/pytest")


def test_rule_example_loads_and_its_tests_pass(tmp_path: Path) -> None:
    (rules,) = [block for block in YAML if block.startswith("namespace:")]
    path = tmp_path / "example.yaml"
    path.write_text(rules)
    assert check_rules([str(path)]) == []
    results = run_rule_tests([str(path)])
    assert len(results) == 2 and all(r.passed for r in results), [f"{r} {r.message}" for r in results]


def test_config_example_is_valid(tmp_path: Path) -> None:
    (text,) = [block for block in YAML if block.startswith("format:")]
    path = tmp_path / "logtrack.yaml"
    path.write_text(text)
    config = load_config(str(path))
    EnrichConfig.from_config(config)
    IdentityConfig.from_config(config)
    PrivacyConfig.from_config(config)
    assert SessionConfig.from_config(config).mode == "ga4"


def test_config_mistakes_name_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "logtrack.yaml"
    path.write_text("sessions:\n  timeout: 30m\n  timout: 5m\n")
    with pytest.raises(ConfigError) as info:
        SessionConfig.from_config(load_config(str(path)))
    assert str(info.value).startswith(f"{path}:3: sessions.timout: unknown key 'timout'")
    res = CliRunner().invoke(main, ["sessions", str(ROOT / "sample_logs"), "-o", str(tmp_path / "o"),
                                    "--config", str(path)])
    assert res.exit_code == 2 and "sessions.timout" in res.output


def test_every_command_has_help_with_an_example() -> None:
    for command in ["parse", "formats", "sessions", "events", "rules", "report", "send"]:
        res = CliRunner().invoke(main, [command, "--help"])
        assert res.exit_code == 0 and "logtrack " + command in res.output, command


def test_config_example_destinations_are_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (text,) = [block for block in YAML if block.startswith("format:")]
    path = tmp_path / "logtrack.yaml"
    path.write_text(text)
    out = tmp_path / "report"
    assert CliRunner().invoke(main, ["report", str(ROOT / "sample_logs" / "shop-access.log"), "--rules",
                                     str(ROOT / "rules"), "-o", str(out), "--quiet"]).exit_code == 0
    monkeypatch.setenv("LOGTRACK_GA4_MEASUREMENT_ID", "G-TEST")
    monkeypatch.setenv("LOGTRACK_GA4_API_SECRET", "not-a-real-secret")
    res = CliRunner().invoke(main, ["send", str(out), "--to", "ga4", "--dry-run", "--config", str(path),
                                    "--state", str(tmp_path / "state")])
    # The sample is months old: every event is refused as too old, under the example's 48 h window.
    assert res.exit_code == 1, res.output
    assert "up to 48 h" in res.output and "not-a-real-secret" not in res.output
