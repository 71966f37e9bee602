"""Figure files rendered by the background process: the bytes of the build process, and a figure that
cannot be pickled is rendered in the build process instead (drawn once)."""
from __future__ import annotations

import numpy as np
from matplotlib.ticker import FuncFormatter

from generator.figures.export import new_figure
from generator.pipeline.cache import Cache
from generator.pipeline.publish import Publisher


def _plot(unpicklable: bool = False):
    fig, ax = new_figure(3.0, 2.0)
    ax.imshow(np.arange(64.0).reshape(8, 8))
    ax.set_title("a map")
    if unpicklable:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0f} px"))  # a lambda: no pickle
    return fig


def _publish(tmp_path, name: str, background: bool, unpicklable: bool = False) -> tuple[dict[str, bytes], int]:
    calls = []

    def make():
        calls.append(1)
        return _plot(unpicklable)

    publisher = Publisher(Cache(tmp_path / name / "cache"), tmp_path / name / "results", background=background)
    try:
        publisher.figure("fig-test", title="Test", caption="A test figure.", alt="a map", page="index.md",
                         make=make, provenance={"seed": 0})
        publisher.finish()
    finally:
        publisher.close()
    folder = tmp_path / name / "results" / "figures"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}, len(calls)


def test_background_files_are_the_bytes_of_the_build_process(tmp_path):
    inline, drawn_inline = _publish(tmp_path, "inline", background=False)
    background, drawn_background = _publish(tmp_path, "background", background=True)
    assert sorted(inline) == ["fig-test.pdf", "fig-test.png", "fig-test.svg"]
    assert background == inline
    assert drawn_inline == drawn_background == 1


def test_a_figure_that_cannot_be_pickled_is_rendered_in_the_build_process(tmp_path):
    inline, _ = _publish(tmp_path, "inline", background=False, unpicklable=True)
    background, drawn = _publish(tmp_path, "background", background=True, unpicklable=True)
    assert background == inline and drawn == 1


def test_figures_survive_the_background_process_being_killed(tmp_path):
    import os
    import signal

    inline, _ = _publish(tmp_path, "inline", background=False)
    publisher = Publisher(Cache(tmp_path / "killed" / "cache"), tmp_path / "killed" / "results", background=True)
    try:
        publisher.figure("fig-test", title="Test", caption="A test figure.", alt="a map", page="index.md",
                         make=_plot, provenance={"seed": 0})
        for pid in list(publisher._pool._processes):  # what the kernel's OOM killer would do
            os.kill(pid, signal.SIGKILL)
        publisher.figure("fig-second", title="Test", caption="A test figure.", alt="a map", page="index.md",
                         make=_plot, provenance={"seed": 1})
        publisher.finish()
    finally:
        publisher.close()
    folder = tmp_path / "killed" / "results" / "figures"
    assert {p.name: p.read_bytes() for p in folder.glob("fig-test.*")} == inline
    assert sorted(p.name for p in folder.glob("fig-second.*")) == ["fig-second.pdf", "fig-second.png",
                                                                   "fig-second.svg"]
