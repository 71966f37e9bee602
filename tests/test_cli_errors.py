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
