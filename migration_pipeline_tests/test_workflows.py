"""Which of a run's writes set off which active Twenty workflow (issue 8, point 11)."""

from __future__ import annotations

from migration_pipeline.destinations.twenty.workflows import PlannedWrites, RecordTrigger, warnings_for


def trigger(event: str, *watched: str) -> RecordTrigger:
    object, action = event.split(".")
    return RecordTrigger("wf-1", f"On {event}", object, action, watched)


PLANNED = {"person": PlannedWrites(creates=10, updates=4), "company": PlannedWrites(creates=3, updates=0)}


def test_created_triggers_count_creates_updated_ones_updates_and_upserted_both() -> None:
    counted = {w.trigger.event: (w.creates, w.updates) for w in warnings_for(
        [trigger("person.created"), trigger("person.updated"), trigger("person.upserted")], PLANNED)}
    assert counted == {"person.created": (10, 0), "person.updated": (0, 4), "person.upserted": (10, 4)}


def test_objects_the_run_does_not_write_and_events_it_does_not_raise_are_not_warned_of() -> None:
    assert warnings_for([trigger("opportunity.created"), trigger("company.updated")], PLANNED) == []


def test_the_warning_says_how_many_records_what_is_watched_and_how_to_pause_it() -> None:
    [warning] = warnings_for([trigger("person.upserted", "emails")], PLANNED)
    assert warning.message() == (
        'active Twenty workflow "On person.upserted" (person.upserted) will run for 14 records of this run '
        "(10 created, up to 4 updated, if emails changed): pause it before the load in Twenty: Settings > "
        "Workflows, open it, Deactivate (an API key cannot), and activate it again after the run"
    )
