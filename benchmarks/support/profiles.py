"""Where a process spends its time: py-spy samples, summarised by function."""

import shutil
import subprocess
from collections import Counter
from pathlib import Path


class Profile:
    """A py-spy recording of one process, started now; ``summary()`` once it is done."""

    def __init__(self, pid: int, seconds: float, output: Path) -> None:
        self._output = output
        spy = shutil.which("py-spy") or str(Path(__file__).parents[2] / ".venv/bin/py-spy")
        self._process: subprocess.Popen[bytes] | None = None
        if Path(spy).exists():
            self._process = subprocess.Popen(
                [
                    *(spy, "record", "-p", str(pid), "-d", str(round(seconds))),
                    *("-f", "raw", "-o", str(output), "--nonblocking"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def summary(self, top: int = 8) -> str:
        """The functions with the most samples on their stack (inclusive), as percentages."""
        if self._process is None:
            return "(py-spy not installed: `.venv/bin/pip install py-spy`)"
        self._process.wait()
        if not self._output.exists():
            return "(py-spy could not attach; it needs ptrace permission)"
        inclusive: Counter[str] = Counter()
        total = 0
        for line in self._output.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            samples = int(count)
            total += samples
            for frame in set(stack.split(";")):
                if "lendo_" in frame or "aiosqlite" in frame or "redis/" in frame:
                    inclusive[frame.split(" (")[0]] += samples
        return ", ".join(
            f"{name} {count / max(total, 1):.0%}" for name, count in inclusive.most_common(top)
        )
