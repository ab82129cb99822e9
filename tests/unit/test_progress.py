"""Progress bars (`ftk.progress`): shown with FTK_PROGRESS=1, never in quiet mode, off on a
non-terminal stream by default; and the steps that draw one."""

import io
import logging
import sys
import types

import pytest
from PIL import Image

from ftk.data.images import check_images
from ftk.data.splits import Row
from ftk.progress import keras_verbose, progress, set_quiet


@pytest.fixture(autouse=True)
def not_quiet():
    set_quiet(False)
    yield
    set_quiet(False)


def test_bar_is_written_with_ftk_progress(monkeypatch):
    monkeypatch.setenv("FTK_PROGRESS", "1")
    stream = io.StringIO()

    seen = list(progress([1, 2, 3], desc="Counting", unit="item", file=stream, leave=True))

    assert seen == [1, 2, 3]
    out = stream.getvalue()
    assert "ftk: Counting" in out
    assert "3/3" in out


def test_quiet_mode_writes_nothing_even_with_ftk_progress(monkeypatch):
    monkeypatch.setenv("FTK_PROGRESS", "1")
    set_quiet(True)
    stream = io.StringIO()

    seen = list(progress([1, 2, 3], desc="Counting", file=stream, leave=True))

    assert seen == [1, 2, 3]
    assert stream.getvalue() == ""
    assert keras_verbose() == 2


def test_no_bar_on_a_non_terminal_stream_by_default(monkeypatch):
    monkeypatch.delenv("FTK_PROGRESS", raising=False)
    stream = io.StringIO()

    assert list(progress(range(3), desc="Counting", file=stream, leave=True)) == [0, 1, 2]
    assert stream.getvalue() == ""


def test_keras_draws_a_bar_on_a_terminal_and_plain_epoch_lines_into_a_log(monkeypatch):
    monkeypatch.delenv("FTK_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a log file: no escape codes
    assert keras_verbose() == 2
    monkeypatch.setenv("FTK_PROGRESS", "1")
    assert keras_verbose() == "auto"
    monkeypatch.delenv("FTK_PROGRESS")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    assert keras_verbose() == "auto"


@pytest.mark.parametrize("workers", [1, 4])
def test_check_images_draws_a_bar(tmp_path, monkeypatch, capsys, workers):
    monkeypatch.setenv("FTK_PROGRESS", "1")
    rows = []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        path = tmp_path / "x" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (8, 6), colour).save(path)
        rows.append(Row(str(path), "x", str(path)))

    kept, skipped = check_images(rows, workers=workers)

    assert (kept, skipped) == (rows, [])
    captured = capsys.readouterr()
    assert "ftk: Checking images" in captured.err
    assert captured.out == ""


def test_check_images_is_silent_in_quiet_mode(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FTK_PROGRESS", "1")
    set_quiet(True)
    path = tmp_path / "0.png"
    Image.new("RGB", (8, 6)).save(path)

    check_images([Row(str(path), "x", str(path))])

    assert capsys.readouterr().err == ""


def test_trial_begin_logs_trial_i_of_n(caplog):
    from ftk.tuning.search import _FtkTrials

    class Base:
        def on_trial_begin(self, trial):
            self.began = trial.trial_id

    class Tuner(_FtkTrials, Base):
        _ftk_max_trials = 5

    tuner = Tuner()
    with caplog.at_level(logging.INFO, logger="ftk"):
        tuner.on_trial_begin(types.SimpleNamespace(trial_id="2"))

    assert tuner.began == "2"
    assert "Trial 3 of 5" in caplog.text
