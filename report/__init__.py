"""The PDF report and profile picture built from a user's answers (no channel, no Telegram).

Heavy libraries (fpdf2, matplotlib) are imported only when a report is built.
"""

from report.build import NOTHING_TO_REPORT, EmptyReport, ReportFiles, build_report, file_names, write_report

__all__ = ["NOTHING_TO_REPORT", "EmptyReport", "ReportFiles", "build_report", "file_names", "write_report"]
