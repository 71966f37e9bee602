"""A full disk or a read-only output folder ends the CLI with a clear message, not a traceback."""
from __future__ import annotations

import errno
from unittest import mock

import pytest

from generator import cli


@pytest.mark.parametrize("code, text", [(errno.ENOSPC, "No space left on device"), (errno.EACCES, "Permission denied"),
                                        (errno.EROFS, "Read-only file system")])
def test_os_errors_are_reported_with_the_file(code, text, capsys):
    def fail(args):
        raise OSError(code, text, "/out/docs/results/dataset.md")

    with mock.patch.object(cli, "_run", fail):
        assert cli.main(["check", "--config", "any.yaml"]) == 2
    err = capsys.readouterr().err
    assert "'/out/docs/results/dataset.md'" in err and text in err and "Traceback" not in err
    assert "run the same command again to resume" in err


def test_missing_browser_libraries_stop_the_build_before_any_work(tmp_path, capsys):
    import yaml
    from helpers import outputs_under

    output = {**outputs_under(tmp_path), "node_modules": str(tmp_path / "no_node_modules")}
    (tmp_path / "mkdocs.yml").write_text("site_name: test\n")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"output": output}))
    assert cli.main(["build", "--config", str(config), "--no-site"]) != 0
    err = capsys.readouterr().err
    assert "no_node_modules" in err and "npm ci" in err and "Traceback" not in err
    assert not (tmp_path / "cache").exists()  # refused before the dataset stage wrote anything
