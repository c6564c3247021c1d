"""Where benchmark figures go: the terminal, and each benchmark's section of docs/performance.md.

Each benchmark owns one section between two HTML comments, so rerunning one
benchmark replaces its own figures and leaves the others' alone.
"""

import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "performance.md"

_HEADER = """# Performance

Every figure below is measured by a module in `benchmarks/`, run by the
command shown with its section, on the machine it names. These machines are
small (2 cores) and shared with other developers' test runs, so absolute
numbers move from run to run: each figure is given beside a baseline measured
in the same run, and the ratio is what to compare. Benchmarks are never part
of the test suite.

"""


def machine() -> str:
    """One line naming what the figures were measured on."""
    return (
        f"{os.cpu_count()} cores ({_cpu_model()}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def write_section(name: str, title: str, body: str) -> None:
    """Print ``body`` and put it, with machine, date and command, in the doc's section ``name``."""
    command = " ".join([".venv/bin/python -m", f"benchmarks.{name}", *sys.argv[1:]])
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- benchmark:{name} -->\n## {title}\n\n"
        f"Command: `{command}`  \nMeasured {stamp} on {machine()}.\n\n{body.strip()}\n"
        f"<!-- /benchmark:{name} -->\n"
    )
    print(section)
    text = DOC.read_text() if DOC.exists() else _HEADER
    start, end = f"<!-- benchmark:{name} -->", f"<!-- /benchmark:{name} -->\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text)


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def against_target(
    ratio: float, p99_ms: float, target: tuple[float, float | None] | None
) -> tuple[str, str]:
    """The target column and the result column of a row: a share of the baseline, and a p99."""
    if target is None:
        return "—", "—"
    share, p99 = target
    wanted = f"≥ {share}×" + (f", p99 < {p99:g} ms" if p99 else "")
    return wanted, verdict(ratio >= share and (p99 is None or p99_ms < p99))


def verdict(met: bool) -> str:
    return "met" if met else "**not met**"
