"""Collects each scenario's report and prints the table at the end of the run.

``LENDO_CHAOS_REPORT=path`` also writes the table to ``path``, for docs/reliability.md.
"""

import os
from pathlib import Path

import pytest
from _pytest.terminal import TerminalReporter

from .harness import PushReport, Report

REPORTS = pytest.StashKey[list[Report]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[REPORTS] = []


@pytest.fixture
def chaos_reports(request: pytest.FixtureRequest) -> list[Report]:
    return request.config.stash[REPORTS]


def pytest_terminal_summary(
    terminalreporter: TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    reports = config.stash.get(REPORTS, [])
    if not reports:
        return
    table = "\n".join([Report.HEADER, *(report.row() for report in reports), _total(reports)])
    pushes = [report.push for report in reports if report.push is not None]
    if pushes:
        table += "\n\n" + "\n".join([PushReport.HEADER, *(push.row() for push in pushes)])
    terminalreporter.write_sep("-", "chaos scenarios")
    terminalreporter.write_line(table)
    destination = os.environ.get("LENDO_CHAOS_REPORT")
    if destination:
        Path(destination).write_text(table + "\n")


def _total(reports: list[Report]) -> str:
    applications = sum(report.applications for report in reports)
    return (
        f"| **all** | {applications} | {sum(report.faults for report in reports)} | | "
        f"| {sum(r.requests_per_application * r.applications for r in reports) / applications:.2f} "
        f"| {sum(report.duplicates_at_bank for report in reports)} "
        f"| {sum(report.dead_letters for report in reports)} "
        f"| {sum(report.lost for report in reports)} | {sum(report.wrong for report in reports)} |"
    )
