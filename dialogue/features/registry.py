"""The features an engine hosts, in the order their hooks run: one line per feature."""

from __future__ import annotations

from dialogue.commands import with_features
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


def standard_commands() -> list[tuple[str, str]]:
    """Every command of an engine with the standard features (what ``Engine.commands`` gives)."""
    return with_features([command for feature in standard_features() for command in feature.commands])
