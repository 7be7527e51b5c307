"""Progress reporting for long clustering steps, through :mod:`logging` (library code never prints)."""
from __future__ import annotations

import logging
import time


class StepLog:
    """Logs ``done / total`` for one long step about every 10 %, at INFO when ``progress`` is true and
    at DEBUG otherwise, and the step's wall time when it finishes."""

    def __init__(self, logger: logging.Logger, name: str, total: int, progress: bool = False) -> None:
        self.logger, self.name, self.total = logger, name, max(int(total), 1)
        self.level = logging.INFO if progress else logging.DEBUG
        self.start = time.perf_counter()
        self.next_report = 0.1

    def update(self, done: int) -> None:
        frac = done / self.total
        if frac >= self.next_report and self.logger.isEnabledFor(self.level):
            self.logger.log(self.level, "%s: %d%% (%.1f s)", self.name, int(100 * frac),
                            time.perf_counter() - self.start)
        while frac >= self.next_report:
            self.next_report += 0.1

    def finish(self, detail: str = "") -> float:
        elapsed = time.perf_counter() - self.start
        self.logger.log(self.level, "%s: done in %.2f s%s", self.name, elapsed, f" ({detail})" if detail else "")
        return elapsed
