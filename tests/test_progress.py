"""Progress bars stay readable in log files."""

from __future__ import annotations

import io

from tnas.progress import LOG_INTERVAL_S, progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_in_a_log_file_redraws_once_a_minute_and_live_in_a_terminal(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    with progress_bar(total=1000, desc="meta-training", file=log) as bar:
        assert bar.mininterval == LOG_INTERVAL_S
        for _ in range(1000):
            bar.update(1)
    assert log.getvalue().count("meta-training") <= 3  # the first draw and the last, not a thousand
    monkeypatch.setattr("sys.stderr", _Terminal())
    with progress_bar(total=10, file=io.StringIO()) as bar:
        assert bar.mininterval < 1
    with progress_bar(total=10, mininterval=5, file=io.StringIO()) as bar:  # a caller's choice stands
        assert bar.mininterval == 5
