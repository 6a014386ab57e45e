"""``drift-lab app`` builds the ``streamlit run`` command: the app found next to this drift_core, the app's
own config as flags (so it holds from any directory), the user's extra arguments last; other commands
still refuse unknown arguments."""

from __future__ import annotations

import shlex
import sys
import tomllib

import pytest

from drift_core.cli import main as cli_main
from drift_core.cli.app import app_folder, config_flags, headless_server
from tests.conftest import ROOT


def test_app_command_runs_this_checkouts_app_with_its_config_as_flags(capsys):
    assert app_folder() == ROOT
    assert cli_main(["app", "--print-command", "--server.port", "8765", "--server.headless", "true"]) == 0
    command = shlex.split(capsys.readouterr().out)
    assert command[:5] == [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py")]
    flags = dict(zip(command[5::2], command[6::2]))
    assert flags["--server.fileWatcherType"] == "none" and flags["--server.enableStaticServing"] == "true"
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    expected = {f"--{section}.{name}" for section, options in config.items() for name in options}
    assert expected <= set(flags)
    assert command[-4:] == ["--server.port", "8765", "--server.headless", "true"]  # the user's, last: they win


def test_config_flags_spell_values_as_streamlit_reads_them(tmp_path):
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "config.toml").write_text(
        '[server]\nheadless = true\nport = 8600\n[theme]\nbase = "dark"\n'
    )
    assert config_flags(tmp_path) == ["--server.headless", "true", "--server.port", "8600", "--theme.base", "dark"]
    assert config_flags(tmp_path / "nowhere") == []


def test_other_commands_still_refuse_unknown_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["train", "--no-such-flag"])
    assert exit_info.value.code == 2 and "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_version_names_the_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--version"], prog="drift-lab")
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("drift-lab ")


def test_a_headless_server_that_cannot_start_says_so_and_points_to_its_log(tmp_path):
    """The browser tests and the benchmarks start the app through headless_server; a server that exits
    before it answers is reported with its log, not waited on."""
    log = tmp_path / "server.log"
    with pytest.raises(RuntimeError, match="exited with status") as failure:
        with headless_server("--server.noSuchOption", "1", log_path=log, health_timeout_s=60):
            pass
    assert str(log) in str(failure.value) and "noSuchOption" in log.read_text()
