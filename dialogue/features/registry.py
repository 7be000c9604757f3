"""The features an engine hosts, in the order their hooks run: one line per feature."""

from __future__ import annotations

from dialogue.feature import Feature
from dialogue.features.collective.feature import CollectiveFeature
from dialogue.features.report_request import ReportFeature
from dialogue.features.team.feature import TeamFeature
from dialogue.features.team.flow import TeamServices


def standard_features(*, team: TeamServices | None = None) -> list[Feature]:
    """The report first (its name question takes the next text), then the team, then the collective."""
    return [
        ReportFeature(),
        TeamFeature(team),
        CollectiveFeature(),
    ]
