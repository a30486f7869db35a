"""Both sources' whole life in one Twenty (the fake always; a real server when TWENTY_TEST_URL
and TWENTY_TEST_API_KEY are set): sample, approve, full, delta, an unchanged rerun, rollback
--all --drop-schema. After each run every staged record is read back, the field diff is clean
and reconciliation passes; the rerun writes nothing; after the rollback the workspace's records
and metadata are those of a snapshot taken before the first run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from migration_pipeline.sources.actionstep.client import ActionstepSource
from migration_pipeline_tests.fakes.actionstep import FakeActionstep, serve_fake_actionstep
from migration_pipeline_tests.real_twenty.exports import (
    BUNDLED_SAMPLE, copy_export, delta_export, headers_only_export,
)
from migration_pipeline_tests.real_twenty.lifecycle import (
    DELTA, FULL, RERUN, SAMPLE, Lifecycle, RunFailed, report_home,
)
from migration_pipeline_tests.real_twenty.snapshot import differences

SAMPLE_SIZE = 60  # AllClients sample runs: well under the export's 300 contacts, so the full run adds most
ACTIONSTEP_SAMPLE_SIZE = 300  # the default (a sample of 60 also holds every object: test_actionstep_sample.py)


def _live(lifecycle: Lifecycle, exports: dict[str, Path], before_delta=lambda: None) -> None:
    """The whole life; a run that fails stops it, but the rollback and the comparison with the
    snapshot always happen, and every broken promise is reported at the end."""
    before = lifecycle.snapshot()
    try:
        sample = lifecycle.migrate("sample", SAMPLE, exports["full"])
        lifecycle.verify("sample", sample)
        lifecycle.approve(SAMPLE)

        full = lifecycle.migrate("full", FULL, exports["full"], gate=True)
        lifecycle.verify("full", full)
        lifecycle.expect("full", sum(c["created"] for c in full.summary().values()) > 0, "created nothing")

        before_delta()
        delta = lifecycle.migrate("delta", DELTA, exports["delta"])
        lifecycle.verify("delta", delta)
        lifecycle.expect("delta", sum(c["updated"] for c in delta.summary().values()) > 0,
                         f"updated nothing: {delta.summary()}")

        rerun = lifecycle.migrate("rerun", RERUN, exports["delta"])
        lifecycle.verify_wrote_nothing("rerun", rerun)
    except RunFailed as stopped:  # what it said; then undo what the runs did
        lifecycle.problems.append(str(stopped))
    finally:
        lifecycle.roll_back_everything()
        left = differences(before, lifecycle.snapshot())
        lifecycle.expect("after rollback", not left, f"{len(left)} differences from the snapshot before: {left[:40]}")
    if lifecycle.problems:
        pytest.fail(f"{len(lifecycle.problems)} broken promises:\n" + "\n".join(lifecycle.problems), pytrace=False)


@pytest.fixture
def lifecycle(twenty, monkeypatch, measurements, request):
    def make(slug: str, scenario: str, sample_size: int = SAMPLE_SIZE, **kwargs) -> Lifecycle:
        return Lifecycle(twenty, slug, f"{twenty.kind}/{scenario}", report_home(twenty, scenario), monkeypatch,
                         measurements, sample_size, **kwargs)
    return make


def test_the_bundled_allclients_sample_lives_and_rolls_back(lifecycle, tmp_path: Path) -> None:
    life = lifecycle("allclients", "allclients-bundled")
    full = copy_export(BUNDLED_SAMPLE, tmp_path / "full")
    delta_export(full, tmp_path / "delta")
    _live(life, {"full": full, "delta": tmp_path / "delta"})


def test_an_allclients_export_in_the_proposed_headers_lives_and_rolls_back(lifecycle, tmp_path: Path) -> None:
    """No TeamMemberID, Website or Custom4, no Users.csv (issue 8, point 8): owners go to the
    fallback member."""
    life = lifecycle("allclients", "allclients-headers-only")
    full = headers_only_export(tmp_path / "full")
    delta_export(full, tmp_path / "delta")
    _live(life, {"full": full, "delta": tmp_path / "delta"})


@pytest.fixture(scope="module")
def _actionstep_server() -> Iterator[FakeActionstep]:
    with serve_fake_actionstep() as fake:
        yield fake


def test_actionstep_through_its_api_on_loopback_lives_and_rolls_back(lifecycle, _actionstep_server, tmp_path) -> None:
    fake = _actionstep_server
    fake.reset()
    source = ActionstepSource(
        client_id=fake.client_id, client_secret=fake.client_secret, refresh_token=fake.refresh_token,
        token_url=fake.token_url, checkpoint_dir=str(tmp_path / "checkpoints"), timeout_seconds=30.0,
    )
    life = lifecycle("actionstep", "actionstep", ACTIONSTEP_SAMPLE_SIZE, resources={"actionstep_source": source})

    def edit_in_actionstep() -> None:
        """Three people renamed in Actionstep after the full run."""
        participants = fake.records("participants")
        edited = (datetime.now(timezone.utc) + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S+00:00")
        people = [p for p in participants if p["isCompany"] == "F" and p["lastName"]][:3]
        for person in people:
            person.update(lastName=f"{person['lastName']}-Delta", modifiedTimestamp=edited)
        fake.set_records("participants", participants)

    _live(life, {"full": tmp_path, "delta": tmp_path}, before_delta=edit_in_actionstep)
