"""Process set-up of the `logtrack` command (cli.tune_process)."""

from __future__ import annotations

import gc

from logtrack import cli


def test_tune_process_freezes_the_heap_once(monkeypatch):
    gc.unfreeze()
    monkeypatch.setattr(cli, "_frozen", False)
    hooks = []
    monkeypatch.setattr(cli.atexit, "register", hooks.append)
    cli.tune_process()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert hooks == [gc.freeze]  # the exit hook freezes what the run built before the final collection
    keep = [[] for _ in range(1000)]  # noqa: F841 - new tracked objects
    cli.tune_process()  # a second command in the same process: no second freeze, no second hook
    assert gc.get_freeze_count() == frozen
    assert hooks == [gc.freeze]
    gc.unfreeze()


def test_command_imports_run_without_the_collector(monkeypatch):
    from click.testing import CliRunner

    seen = []
    real = cli.importlib.import_module

    def spy(name, *a):
        seen.append((name, gc.isenabled()))
        return real(name, *a)

    monkeypatch.setattr(cli.importlib, "import_module", spy)
    monkeypatch.setattr(cli, "_frozen", True)  # no freeze in the test process
    assert gc.isenabled()
    result = CliRunner().invoke(cli.main, ["formats"])
    assert result.exit_code == 0, result.output
    assert ("logtrack.commands.formats", False) in seen
    assert gc.isenabled()  # back on for the run itself
