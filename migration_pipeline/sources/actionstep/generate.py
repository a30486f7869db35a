"""Deterministic generator of a synthetic, deliberately messy Actionstep dataset.

Records come out exactly as the Actionstep REST API serves them (field and resource names
case-sensitive as in the published OpenAPI files, booleans as "T"/"F", relationship ids
under `links`, composite ids joined by "--", timestamps with local offsets in mixed
formats), so the fake server can serve them verbatim and the connector must do the work.

Planted messy cases, counted in `DatasetSummary`: participants without email, ids and link
ids as strings instead of ints, timestamps in five formats (ISO with offset, space
separator, UTC "Z", milliseconds, date-only) and birth dates like "23-May-1987", soft-deleted
matters and documents, deleted tasks, a circular "Parent Company" chain between three companies, a staff member without
email, documents over Twenty's upload limit, data collection values of every data type
(text, number, money, date, date-time, dropdown, multi-dropdown, boolean) serialised as
strings, and blank values.

Resources not in the published OpenAPI files follow `shared/sources/actionstep.md`;
their field lists are assumptions and marked so: `participanttypes`, `users`,
`actiondocuments`, `steps`.

What Twenty cannot hold is generated too, for the rebuild package: `bills`,
`disbursements` and `timeentries` (fields as in their OpenAPI files; 201 time entries by
default, so their last page holds one record and is served as an object), and the workflow
configuration: `steps` of each matter type (ids `<actionType>--<stepNumber>`, as matters'
`links.step`) besides `actiontypes` and `actiontypeparticipanttypes`. Trust accounting is not
generated: no documented endpoint.

    python -m migration_pipeline.sources.actionstep.generate --out DIR --seed 7

The same arguments always give the same dataset (byte-identical JSON files).
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

Record = dict[str, Any]

LARGE_DOCUMENT_BYTES = 25 * 1024 * 1024  # above Twenty's default 10 MB upload limit
_BASE_TIME = datetime(2021, 3, 1, 9, 0, 0)
_OFFSETS = ("+10:00", "+12:00", "+13:00", "+05:30", "-05:00", "+00:00")
TIMESTAMP_FORMATS = ("iso_offset", "space_offset", "utc_z", "millis_offset", "date_only")

ACTION_TYPES: tuple[tuple[int, str, str], ...] = (
    (31, "Conveyancing", "Purchase and sale of property."),
    (32, "Litigation", "Covers all general litigation matters."),
    (33, "Family Law", "Separation, custody and property settlement."),
)
PARTICIPANT_TYPES: tuple[tuple[int, str], ...] = (
    (1, "Client"),
    (2, "Witness"),
    (3, "Opposing Counsel"),
    (4, "Other Side Solicitor"),
    (5, "Referrer"),
    (6, "Real Estate Agent"),
)
CLIENT_TYPE_ID = 1
ACTION_STATUSES = ("Active", "Active", "Active", "Closed", "Closed", "Inactive")
TASK_STATUSES = ("Incomplete", "Incomplete", "Complete", "Complete", "Hidden", "Deleted")
TASK_PRIORITIES = ("Low", "Normal", "Normal", "High")

# (name, label, dataType, dropdown choices): one single-record collection per matter type
# holds a field of every data type the mapping converts.
_SINGLE_FIELDS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("ClientReference", "Client reference", "Str255", ()),
    ("Instructions", "Instructions", "TextArea", ()),
    ("NumberOfParties", "Number of parties", "Number", ()),
    ("AgreedFee", "Agreed fee", "Money", ()),
    ("KeyDate", "Key date", "Date", ()),
    ("FirstMeeting", "First meeting", "DateTime", ()),
    ("Jurisdiction", "Jurisdiction", "DropDown", ("NSW", "VIC", "QLD", "WA")),
    ("RiskFlags", "Risk flags", "DropDownMulti", ("Urgent", "Conflict check", "Legal aid", "VIP")),
    ("FeeEstimateSent", "Fee estimate sent", "Boolean", ()),
)
# A repeating group (multipleRecords = T): several records per matter.
_MULTI_FIELDS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("ItemDescription", "Description", "Str255", ()),
    ("ItemValue", "Value", "Money", ()),
    ("ItemDate", "Date", "Date", ()),
)

_FIRST = ("Olivia", "Liam", "Amelia", "Noah", "Isla", "Jack", "Mia", "William", "Ava", "Oliver",
          "Chloé", "Zoë", "Mateo", "Aroha", "Wiremu", "Priya", "Arjun", "Mei", "Sven", "Ngaio")
_LAST = ("Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Müller", "O'Brien",
         "Singh", "Patel", "Kowalski", "Ngata", "Tūhoe", "Chen", "García", "Walker", "Harris")
_COMPANY_STEMS = ("Harbour", "Summit", "Kauri", "Southern Cross", "Bluegum", "Ironbark", "Tasman",
                  "Pinnacle", "Coastal", "Meridian", "Wattle", "Redgum", "Aurora", "Highland")
_COMPANY_KINDS = ("Holdings", "Properties", "Legal", "Realty", "Constructions", "Trading", "Group")
_COMPANY_SUFFIXES = ("Pty Ltd", "Ltd", "Limited", "Pty. Ltd.", "")
_CITIES = (("Sydney", "NSW", "AU", 61, 2), ("Melbourne", "VIC", "AU", 61, 3), ("Brisbane", "QLD", "AU", 61, 7),
           ("Auckland", "Auckland", "NZ", 64, 9), ("Wellington", "Wellington", "NZ", 64, 4))
_PHONE_LABELS = ("Business", "Mobile", "Home", "Fax")
_NOTE_TEXTS = ("Client called about settlement date.", "Sent engagement letter.",
               "Received signed contract.", "Left voicemail, will follow up.",
               "Discussed fee estimate with client.", "Court date confirmed.")
_TASK_NAMES = ("Send engagement letter", "Conflict check", "Review contract", "File documents",
               "Prepare brief", "Call client", "Lodge with court", "Settlement booking")
_DOC_NAMES = ("Contract of sale", "Engagement letter", "Affidavit", "Title search", "Court order")
_DOC_KEYWORDS = ("Signed", "Draft", "Court", "Client copy", "Confidential")
# Every third document has no summary. Not drawn from the random stream, so adding it changed
# nothing else in the dataset.
_DOC_SUMMARIES = (None, "Signed by both parties.", "Draft for the client's review.\nSecond page pending.")
_MATTER_SUBJECTS = ("Purchase of", "Sale of", "Dispute over", "Settlement for", "Estate of")
_STREETS = ("Beach Road", "Queen Street", "George Street", "Lambton Quay", "Collins Street")
STEP_NAMES = ("Intake", "Conflict check", "In progress", "Settlement", "Closing")  # steps 1..5 of every matter type
BILL_STATUSES = ("Draft", "Open", "Open", "Closed", "Closed", "Deleted")
_WORK_DONE = ("Attendance on client", "Drafting correspondence", "Review of documents", "Telephone call",
              "Court appearance", "Research")
_DISBURSEMENT_ITEMS = ("Title search fee", "Court filing fee", "Courier", "Process server", "Photocopying")


@dataclass
class DatasetSummary:
    """Exact counts of what was generated, so tests can reconcile against them."""

    seed: int
    records: dict[str, int] = field(default_factory=dict)  # resource -> number of records
    companies: int = 0  # participants with isCompany = T
    people: int = 0  # participants with isCompany = F (staff included)
    staff: int = 0
    participants_without_email: int = 0
    staff_without_email: int = 0
    string_ids: int = 0  # records whose own `id` is a JSON string although the spec says int
    string_link_ids: int = 0  # link values (or list items) that are strings instead of ints
    timestamp_formats: dict[str, int] = field(default_factory=dict)  # format -> timestamp cells
    birth_dates: int = 0  # "23-May-1987" style birthTimestamp values
    deleted_matters: int = 0
    deleted_documents: int = 0  # actiondocuments with isDeleted = T
    circular_parent_chain: list[int] = field(default_factory=list)  # company ids, A->B->C->A
    large_documents: int = 0  # fileSize above LARGE_DOCUMENT_BYTES
    data_types: list[str] = field(default_factory=list)  # dataTypes of datacollectionfields
    multi_record_collections: int = 0


@dataclass
class ActionstepDataset:
    """Resource name (exactly as in the API path) -> records exactly as the API serves them."""

    resources: dict[str, list[Record]]
    summary: DatasetSummary


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.summary = DatasetSummary(seed=seed)
        self.resources: dict[str, list[Record]] = {}
        self._timestamp_turn = 0

    # -- planted quirks --------------------------------------------------------------------

    def some_id(self, value: int, share: float = 0.25) -> int | str:
        """An id, sometimes as a string (as real responses do although the spec says int)."""
        if self.rng.random() < share:
            self.summary.string_ids += 1
            return str(value)
        return value

    def link(self, value: int | None, share: float = 0.5) -> int | str | None:
        if value is None:
            return None
        if self.rng.random() < share:
            self.summary.string_link_ids += 1
            return str(value)
        return value

    def timestamp(self, moment: datetime, date_only: bool = False) -> str:
        """A local timestamp in one of the formats Actionstep was seen to use, rotating; or a
        bare date, as on some matters' createdTimestamp in a captured real response."""
        kinds = TIMESTAMP_FORMATS[:-1]
        kind = "date_only" if date_only else kinds[self._timestamp_turn % len(kinds)]
        self._timestamp_turn += not date_only
        self.summary.timestamp_formats[kind] = self.summary.timestamp_formats.get(kind, 0) + 1
        offset = self.rng.choice(_OFFSETS)
        if kind == "iso_offset":
            return moment.strftime("%Y-%m-%dT%H:%M:%S") + offset
        if kind == "space_offset":
            return moment.strftime("%Y-%m-%d %H:%M:%S") + offset
        if kind == "utc_z":
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        if kind == "millis_offset":
            return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{self.rng.randrange(1000):03d}" + offset
        return moment.strftime("%Y-%m-%d")

    def moment(self, days: int = 1200) -> datetime:
        return _BASE_TIME + timedelta(days=self.rng.randrange(days), minutes=self.rng.randrange(24 * 60))

    def flag(self, true_share: float) -> str:
        return "T" if self.rng.random() < true_share else "F"

    def add(self, resource: str, record: Record) -> Record:
        self.resources.setdefault(resource, []).append(record)
        return record


def _participant(b: _Builder, pid: int, *, company: str | None, first: str | None, last: str | None,
                 email: str | None, employer: str | None = None) -> Record:
    city, state, country, country_code, area = b.rng.choice(_CITIES)
    created = b.moment()
    record: Record = {
        "id": b.some_id(pid),
        "displayName": company if company else f"{last}, {first}",
        "displayInitials": None if company else f"{first[0]}{last[0]}",  # type: ignore[index]
        "isCompany": "T" if company else "F",
        "companyName": company if company else employer,
        "salutation": None if company else b.rng.choice(("Mr", "Ms", "Mrs", "Dr", None)),
        "firstName": first,
        "middleName": None,
        "lastName": last,
        "suffix": None,
        "preferredName": None,
        "physicalAddressLine1": f"{b.rng.randrange(1, 400)} {b.rng.choice(_STREETS)}",
        "physicalAddressLine2": None,
        "physicalCity": city,
        "physicalStateProvince": state,
        "physicalCounty": None,
        "physicalPostCode": str(b.rng.randrange(1000, 9999)),
        "mailingAddressLine1": None,
        "mailingAddressLine2": None,
        "mailingCity": None,
        "mailingStateProvince": None,
        "mailingCounty": None,
        "mailingPostCode": None,
    }
    phone_count = b.rng.choice((0, 1, 1, 2, 2, 3, 4))
    for slot in range(1, 5):
        present = slot <= phone_count
        record[f"phone{slot}Label"] = _PHONE_LABELS[slot - 1] if present else None
        record[f"phone{slot}Country"] = country_code if present else None
        record[f"phone{slot}Area"] = area if present else None
        record[f"phone{slot}Number"] = f"{b.rng.randrange(1000, 9999)} {b.rng.randrange(1000, 9999)}" if present else None
        record[f"phone{slot}Notes"] = "Only after 5pm" if present and slot == 3 else None
    birth = None
    if not company and b.rng.random() < 0.4:
        birth = (datetime(1950, 1, 1) + timedelta(days=b.rng.randrange(18000))).strftime("%d-%b-%Y")
        b.summary.birth_dates += 1
    record.update({
        "fax": None,
        "sms": None,
        "email": email,
        "website": f"www.{company.split()[0].lower()}.example.com" if company else None,
        "occupation": None if company else b.rng.choice(("Dentist", "Teacher", "Engineer", None)),
        "taxNumber": None,
        "birthTimestamp": birth,
        "deathTimestamp": None,
        "gender": None if company else b.rng.choice(("M", "F")),
        "isDeceased": "F",
        "createdTimestamp": b.timestamp(created),
        "modifiedTimestamp": b.timestamp(created + timedelta(days=b.rng.randrange(300))),
        "debtorStatementSendEmail": b.flag(0.7),
        "debtorStatementUsePrimaryEmail": "T",
        "debtorStatementEmail": None,
        "importExternalReference": None,
        "links": {"physicalCountry": country, "mailingCountry": None, "division": b.link(1)},
    })
    if company:
        b.summary.companies += 1
    else:
        b.summary.people += 1
    if not email:
        b.summary.participants_without_email += 1
    return b.add("participants", record)


def _email_for(first: str, last: str, n: int) -> str:
    plain = "".join(ch for ch in f"{first}.{last}".lower() if ch.isascii() and (ch.isalnum() or ch == "."))
    return f"{plain}{n}@example.com"


def _build_types(b: _Builder) -> None:
    for type_id, name in PARTICIPANT_TYPES:
        # Assumption: no published OpenAPI file for participanttypes; id + name + description.
        b.add("participanttypes", {"id": type_id, "name": name, "description": f"{name} on a matter"})
    for type_id, name, description in ACTION_TYPES:
        b.add("actiontypes", {
            "id": type_id, "name": name, "description": description,
            "trackActualTime": "T", "trackBillableTime": "T", "isForCrm": "F", "isDisabled": "F",
            "isBillable": "T", "links": {"primaryParticipantType": b.link(CLIENT_TYPE_ID)},
        })
        for type_id_p, _ in PARTICIPANT_TYPES:
            b.add("actiontypeparticipanttypes", {
                "id": f"{type_id}--{type_id_p}",
                "required": "T" if type_id_p == CLIENT_TYPE_ID else "F",
                "isPrimaryParticipantType": "T" if type_id_p == CLIENT_TYPE_ID else "F",
                "actionType": type_id,
                "links": {"participantType": b.link(type_id_p)},
            })


def _build_staff(b: _Builder, count: int, first_id: int) -> list[tuple[int, str]]:
    staff: list[tuple[int, str]] = []
    for n in range(count):
        pid = first_id + n
        first, last = _FIRST[n % len(_FIRST)], _LAST[(n * 7) % len(_LAST)]
        email = None if n == count - 1 else f"{first.lower()}.{n}@lawfirm.example.com".replace("é", "e")
        _participant(b, pid, company=None, first=first, last=last, email=email, employer="Example Law")
        if email is None:
            b.summary.staff_without_email += 1
        # Assumption: `users` (staff) fields are not in the published spec.
        b.add("users", {"id": b.some_id(pid), "firstName": first, "lastName": last, "email": email,
                        "isActive": "F" if n == 0 else "T", "links": {"participant": b.link(pid)}})
        staff.append((pid, f"{last}, {first}"))
    b.summary.staff = count
    return staff


def _build_contacts(b: _Builder, people: int, companies: int, first_id: int) -> tuple[list[int], list[int]]:
    company_ids: list[int] = []
    company_names: list[str] = []
    for n in range(companies):
        pid = first_id + n
        stem, kind = _COMPANY_STEMS[n % len(_COMPANY_STEMS)], _COMPANY_KINDS[n % len(_COMPANY_KINDS)]
        name = f"{stem} {kind} {b.rng.choice(_COMPANY_SUFFIXES)}".strip()
        if n >= len(_COMPANY_STEMS):
            name = f"{name} {n}"
        email = None if n % 4 == 0 else f"info@{stem.split()[0].lower()}{n}.example.com"
        _participant(b, pid, company=name, first=None, last=None, email=email)
        company_ids.append(pid)
        company_names.append(name)
    person_ids: list[int] = []
    for n in range(people):
        pid = first_id + companies + n
        first, last = b.rng.choice(_FIRST), b.rng.choice(_LAST)
        email = None if b.rng.random() < 0.15 else _email_for(first, last, n)
        employer = b.rng.choice(company_names) if b.rng.random() < 0.3 else None
        _participant(b, pid, company=None, first=first, last=last, email=email, employer=employer)
        person_ids.append(pid)
    # A circular "Parent Company" chain between three companies: A -> B -> C -> A.
    chain = company_ids[:3]
    for child, parent in zip(chain, chain[1:] + chain[:1]):
        b.add("contactrelationships", {"id": f"Parent Company-{child}-{parent}", "relationship": "Parent Company",
                                       "links": {"fromContact": b.link(child), "toContact": b.link(parent)}})
    b.summary.circular_parent_chain = chain
    # Ordinary parents beside it: a small group (two subsidiaries, one of them with its own).
    # Plain int links, drawn from no random source, so the rest of the dataset is unchanged.
    group = company_ids[3:7]
    for child, parent in zip(group[1:], (group[0], group[0], group[2])):
        b.add("contactrelationships", {"id": f"Parent Company-{child}-{parent}", "relationship": "Parent Company",
                                       "links": {"fromContact": child, "toContact": parent}})
    for pid in person_ids[::9]:
        employer_id = b.rng.choice(company_ids)
        b.add("contactrelationships", {"id": f"Employer-{pid}-{employer_id}", "relationship": "Employer",
                                       "links": {"fromContact": b.link(pid), "toContact": b.link(employer_id)}})
    return person_ids, company_ids


def _build_collections(b: _Builder) -> dict[int, tuple[int, int]]:
    """Per action type: (single-record collection id, multi-record collection id)."""
    by_type: dict[int, tuple[int, int]] = {}
    choice_order = 0
    for n, (type_id, type_name, _) in enumerate(ACTION_TYPES):
        single_id, multi_id = 100 + 2 * n, 101 + 2 * n
        by_type[type_id] = (single_id, multi_id)
        short = type_name.replace(" ", "")
        for dc_id, name, multiple, fields in ((single_id, f"{short}Details", "F", _SINGLE_FIELDS),
                                              (multi_id, f"{short}Items", "T", _MULTI_FIELDS)):
            b.add("datacollections", {
                "id": dc_id, "name": name, "label": f"{type_name} {'items' if multiple == 'T' else 'details'}",
                "description": f"Custom data for {type_name} matters", "multipleRecords": multiple,
                "order": 1 if multiple == "F" else 2, "alwaysShowDescriptions": "F",
                "links": {"actionType": b.link(type_id)},
            })
            b.summary.multi_record_collections += multiple == "T"
            for order, (field_name, label, data_type, choices) in enumerate(fields, start=1):
                b.add("datacollectionfields", {
                    "id": f"{dc_id}--{field_name}", "name": field_name, "dataType": data_type, "label": label,
                    "formOrder": order, "listOrder": order, "required": "T" if order == 1 else "F",
                    "description": None, "links": {"dataCollection": b.link(dc_id), "tag": None},
                })
                for list_order, choice in enumerate(choices, start=1):
                    choice_order += 1
                    b.add("datacollectionfielddropdownchoices", {
                        "id": f"{dc_id}--{field_name}--{choice}", "name": choice, "value": choice,
                        "listOrder": list_order, "isDefault": "T" if list_order == 1 else "F", "parentValue": None,
                        "links": {"dataField": f"{dc_id}--{field_name}", "dataCollection": b.link(dc_id)},
                    })
    b.summary.data_types = sorted({f["dataType"] for f in b.resources["datacollectionfields"]})
    return by_type


def _string_value(b: _Builder, data_type: str, choices: tuple[str, ...]) -> str | None:
    """Every data type serialised as a string, as the API does (`stringValue`)."""
    if b.rng.random() < 0.1:
        return None  # left blank on the form
    moment = b.moment()
    if data_type == "Str255":
        return f"REF-{b.rng.randrange(10000, 99999)}"
    if data_type == "TextArea":
        return "Client prefers email.\nAvailable weekday mornings."
    if data_type == "Number":
        return str(b.rng.randrange(1, 12))
    if data_type == "Money":
        return f"{b.rng.randrange(500, 2_000_000) / 100:.2f}"
    if data_type == "Date":
        return moment.strftime("%Y-%m-%d")
    if data_type == "DateTime":
        return b.timestamp(moment)
    if data_type == "DropDown":
        return b.rng.choice(choices)
    if data_type == "DropDownMulti":
        # Assumption: several choices joined by a comma (the spec does not show the format).
        return ",".join(sorted(b.rng.sample(choices, b.rng.randrange(1, 3))))
    if data_type == "Boolean":
        return b.flag(0.5)
    raise ValueError(f"no generator for dataType {data_type!r}")


def _collection_record(b: _Builder, record_id: int, action_id: int, dc_id: int,
                       fields: tuple[tuple[str, str, str, tuple[str, ...]], ...], staff_ids: list[int]) -> None:
    b.add("datacollectionrecords", {
        "id": b.some_id(record_id), "canWrite": "T", "canDelete": "F",
        "links": {"action": b.link(action_id), "dataCollection": b.link(dc_id)},
    })
    for field_name, _, data_type, choices in fields:
        b.add("datacollectionrecordvalues", {
            "id": f"{dc_id}--{field_name}--{record_id}",
            "stringValue": _string_value(b, data_type, choices),
            "last_modified_time_stamp": b.timestamp(b.moment()),
            "last_modified_by_user_id": b.rng.choice(staff_ids),
            "links": {"action": b.link(action_id), "dataCollectionField": f"{dc_id}--{field_name}",
                      "dataCollectionRecord": b.link(record_id), "dataCollection": b.link(dc_id)},
        })


def _build_matters(b: _Builder, matters: int, staff: list[tuple[int, str]], person_ids: list[int],
                   company_ids: list[int], collections: dict[int, tuple[int, int]]) -> None:
    staff_ids = [pid for pid, _ in staff]
    contacts = person_ids + company_ids
    ids = {"note": 5000, "contactnote": 8000, "task": 20000, "document": 30000, "record": 6000}
    for n in range(matters):
        action_id = 70001 + n
        type_id, type_name, _ = ACTION_TYPES[n % len(ACTION_TYPES)]
        status = "Template" if n == matters - 1 else b.rng.choice(ACTION_STATUSES)
        created = b.moment(900)
        deleted = n % 25 == 7
        b.summary.deleted_matters += deleted
        client = b.rng.choice(contacts)
        others = b.rng.sample([c for c in contacts if c != client], b.rng.randrange(1, 4))
        b.add("actions", {
            "id": b.some_id(action_id),
            "name": f"{b.rng.choice(_MATTER_SUBJECTS)} {b.rng.randrange(1, 400)} {b.rng.choice(_STREETS)}",
            "reference": f"{type_name[:2].upper()}{action_id}",
            "priority": b.rng.randrange(0, 4),
            "status": status,
            "statusTimestamp": b.timestamp(created + timedelta(days=30)),
            "isBillableOverride": "F",
            "createdTimestamp": b.timestamp(created, date_only=n % 4 == 0),
            "modifiedTimestamp": b.timestamp(created + timedelta(days=b.rng.randrange(60, 300))),
            "isDeleted": "T" if deleted else "F",
            "deletedBy": staff[0][1] if deleted else None,
            "deletedTimestamp": b.timestamp(created + timedelta(days=320)) if deleted else None,
            "isFavorite": b.flag(0.1),
            "importExternalReference": None,
            "amlReviewStatus": "None",
            "bannerText": None,
            "links": {
                "assignedTo": b.link(b.rng.choice(staff_ids)),
                "division": b.link(1),
                "actionType": b.link(type_id),
                "primaryParticipants": [b.link(client)],
                "step": f"{type_id}--{b.rng.randrange(1, 6)}",
                "billSettings": None,
                "relatedActions": [b.link(70001 + n - 1)] if n % 10 == 9 else [],
            },
        })
        roles = [(CLIENT_TYPE_ID, client)] + [(b.rng.choice(PARTICIPANT_TYPES[1:])[0], p) for p in others]
        for number, (type_p, participant) in enumerate(roles, start=1):
            b.add("actionparticipants", {
                "id": f"{action_id}--{type_p}--{participant}", "participantNumber": number,
                "links": {"action": b.link(action_id), "participantType": b.link(type_p),
                          "participant": b.link(participant)},
            })
        single_dc, multi_dc = collections[type_id]
        ids["record"] += 1
        _collection_record(b, ids["record"], action_id, single_dc, _SINGLE_FIELDS, staff_ids)
        for _ in range(b.rng.randrange(0, 3)):
            ids["record"] += 1
            _collection_record(b, ids["record"], action_id, multi_dc, _MULTI_FIELDS, staff_ids)
        for _ in range(b.rng.randrange(0, 4)):
            ids["task"] += 1
            task_status = b.rng.choice(TASK_STATUSES)
            due = created + timedelta(days=b.rng.randrange(5, 120))
            b.add("tasks", {
                "id": b.some_id(ids["task"]), "name": b.rng.choice(_TASK_NAMES), "status": task_status,
                "priority": b.rng.choice(TASK_PRIORITIES), "dueTimestamp": b.timestamp(due),
                "startedTimestamp": b.timestamp(due - timedelta(days=3)) if task_status != "Incomplete" else None,
                "completedTimestamp": b.timestamp(due - timedelta(days=1)) if task_status == "Complete" else None,
                "lastModifiedTimestamp": b.timestamp(due), "description": None,
                "assignedBy": staff[0][1], "isBillingHold": "F", "hasTriggerDate": "F",
                "links": {"action": b.link(action_id), "assignee": b.link(b.rng.choice(staff_ids)), "template": None},
            })
        documents: list[int] = []
        for _ in range(b.rng.randrange(0, 3)):
            ids["document"] += 1
            large = ids["document"] % 17 == 0
            b.summary.large_documents += large
            # Not drawn from the random stream, so the rest of the dataset is unchanged.
            deleted_document = ids["document"] % 11 == 4
            b.summary.deleted_documents += deleted_document
            name = b.rng.choice(_DOC_NAMES)
            # Assumption: actiondocuments fields from the legacy wiki (no published OpenAPI file);
            # `summary` as in contactdocuments.yml.
            b.add("actiondocuments", {
                "id": ids["document"], "name": name, "modifiedTimestamp": b.timestamp(b.moment()),
                "fileSize": LARGE_DOCUMENT_BYTES + 1 if large else b.rng.randrange(2_000, 900_000),
                "fileName": f"{name.lower().replace(' ', '_')}_{ids['document']}.pdf", "extension": "pdf",
                "file": f"DL::Actions::{action_id}::{ids['document']}",
                "keywords": ", ".join(b.rng.sample(_DOC_KEYWORDS, b.rng.randrange(0, 3))) or None,
                "summary": _DOC_SUMMARIES[ids["document"] % len(_DOC_SUMMARIES)],
                # Assumption: flagged like a matter (isDeleted, deletedTimestamp); no published spec.
                "isDeleted": "T" if deleted_document else "F",
                "deletedTimestamp": "2024-02-01T10:00:00+10:00" if deleted_document else None,
                "links": {"action": b.link(action_id), "folder": None, "createdBy": b.link(b.rng.choice(staff_ids))},
            })
            documents.append(ids["document"])
        for _ in range(b.rng.randrange(0, 4)):
            ids["note"] += 1
            author = b.rng.choice(staff)
            b.add("filenotes", {
                "id": b.some_id(ids["note"]), "enteredTimestamp": b.timestamp(b.moment()),
                "text": b.rng.choice(_NOTE_TEXTS), "enteredBy": author[1],
                "source": b.rng.choice(("User", "User", "System")), "noteTimestamp": b.timestamp(b.moment()),
                "links": {"action": b.link(action_id), "document": b.link(documents[0]) if documents else None,
                          "participant": b.link(client) if b.rng.random() < 0.3 else None, "tags": []},
            })
    for pid in contacts[::6]:
        ids["contactnote"] += 1
        author = b.rng.choice(staff)
        b.add("contactnotes", {
            "id": ids["contactnote"], "enteredTimestamp": b.timestamp(b.moment()),
            "text": b.rng.choice(_NOTE_TEXTS), "enteredBy": author[1], "enteredByParticipant": author[0],
            "source": "User", "noteTimestamp": b.timestamp(b.moment()), "links": {"participant": b.link(pid)},
        })


def _build_steps(b: _Builder) -> None:
    """The steps of each matter type (workflow configuration). Assumption: `steps` has no
    published OpenAPI file; id `<actionTypeId>--<stepNumber>` as matters' `links.step`."""
    for type_id, type_name, _ in ACTION_TYPES:
        for number, name in enumerate(STEP_NAMES, start=1):
            b.add("steps", {
                "id": f"{type_id}--{number}", "stepNumber": number, "stepName": name,
                "description": f"{name} of a {type_name} matter", "isActive": "T",
                "links": {"actionType": b.link(type_id)},
            })


def _build_billing(b: _Builder, staff: list[tuple[int, str]]) -> None:
    """Bills, disbursements and time entries per matter (fields as in their OpenAPI files):
    the accounting Twenty cannot hold, for the rebuild package. Generated after everything
    else so the rest of the dataset does not change with them."""
    staff_ids = [pid for pid, _ in staff]
    matters = [(int(a["id"]), a) for a in b.resources["actions"]]
    tasks_by_action: dict[int, list[int]] = {}
    for task in b.resources.get("tasks", []):
        tasks_by_action.setdefault(int(task["links"]["action"]), []).append(int(task["id"]))
    ids = {"bill": 40000, "disbursement": 50000, "time": 60000}
    for n, (action_id, action) in enumerate(matters):
        client = action["links"]["primaryParticipants"][0]
        for _ in range(b.rng.randrange(0, 3)):
            ids["bill"] += 1
            invoice = b.moment()
            exclusive = b.rng.randrange(20_000, 2_000_000) / 100
            tax = round(exclusive * 0.1, 2)
            total = round(exclusive + tax, 2)
            status = b.rng.choice(BILL_STATUSES)
            paid = total if status == "Closed" else round(total * b.rng.choice((0, 0, 0.5)), 2)
            b.add("bills", {
                "id": b.some_id(ids["bill"]), "status": status, "ourReference": f"INV-{ids['bill']}",
                "theirReference": None if b.rng.random() < 0.5 else f"PO-{b.rng.randrange(1000, 9999)}",
                "currency": "AUD",
                # calendar dates, in both formats the spec shows
                "invoiceDate": invoice.strftime("%Y-%m-%d" if ids["bill"] % 2 else "%d-%b-%Y"),
                "dueDate": (invoice + timedelta(days=30)).strftime("%Y-%m-%d"),
                "totalInclusive": total, "totalExclusive": exclusive, "totalSalesTax": tax,
                "totalPaid": paid, "totalDue": round(total - paid, 2),
                "createdTimestamp": b.timestamp(invoice), "modifiedTimestamp": b.timestamp(invoice + timedelta(days=3)),
                "deletedTimestamp": b.timestamp(invoice + timedelta(days=5)) if status == "Deleted" else None,
                "links": {"division": b.link(1), "action": [b.link(action_id)], "theirParticipant": b.link(client)},
            })
        for _ in range(b.rng.randrange(0, 3)):
            ids["disbursement"] += 1
            b.add("disbursements", {
                "id": b.some_id(ids["disbursement"]), "date": b.moment().strftime("%Y-%m-%d"),
                "description": b.rng.choice(_DISBURSEMENT_ITEMS), "quantity": b.rng.randrange(1, 4),
                "unitPrice": b.rng.randrange(500, 50_000) / 100, "unitPriceIncludesTax": b.flag(0.5),
                "utbmsExpenseCode": b.rng.choice((None, "E101", "E108")), "importExternalReference": None,
                "enteredTimestamp": b.timestamp(b.moment()), "isAnticipated": b.flag(0.2),
                "links": {"action": b.link(action_id), "enteredByParticipant": b.link(b.rng.choice(staff_ids)),
                          "uom": None, "taxCode": b.link(1), "incomeAccount": None},
            })
        for _ in range(3 + (n <= len(matters) // 3)):  # 201 with 60 matters: a one-record last page
            ids["time"] += 1
            worked = b.moment()
            hours = b.rng.choice((0.1, 0.2, 0.5, 1.0, 1.5, 2.3))
            rate = b.rng.choice((250.0, 320.0, 450.0))
            billable = b.flag(0.8)
            tasks = tasks_by_action.get(action_id, [])
            b.add("timeentries", {
                "id": b.some_id(ids["time"]), "timestampDate": b.timestamp(worked),
                "description": b.rng.choice(_WORK_DONE), "actualHours": hours,
                "billableHours": hours if billable == "T" else 0, "createdTimestamp": b.timestamp(worked),
                "startTime": worked.strftime("%H:%M:%S"), "timerStatus": "Stopped",
                "timerStartedClientTimestamp": None, "timerDurationSeconds": str(int(hours * 3600)),
                "billingBehavior": "Bill" if billable == "T" else "No charge", "rateUnitPrice": rate,
                "rateSource": b.rng.choice(("Default", "Timekeeper", "Action")), "rateTimestamp": None,
                "billableAmountType": "Calculated", "billableAmount": round(hours * rate, 2) if billable == "T" else 0,
                "isBillable": billable, "importExternalReference": None,
                "links": {"task": b.link(tasks[0]) if tasks else None, "quickCode": None,
                          "createdBy": b.link(b.rng.choice(staff_ids)), "owner": b.link(b.rng.choice(staff_ids)),
                          "action": b.link(action_id), "rate": None, "utbmsActivityCode": None,
                          "utbmsTaskCode": None, "utbmsTimekeeperCode": None, "phoneRecord": None},
            })


def generate_dataset(seed: int = 7, *, matters: int = 60, people: int = 355, companies: int = 40,
                     staff: int = 6) -> ActionstepDataset:
    """A dataset with `people + companies + staff` participants (401 by default: three pages of
    200 where the last holds one record, which the API returns as an object, not a list)."""
    if companies < 3 or staff < 2 or matters < 1 or people < 1:
        raise ValueError("need at least 3 companies (the circular chain), 2 staff, 1 matter and 1 person")
    b = _Builder(seed)
    _build_types(b)
    staff_list = _build_staff(b, staff, first_id=900)
    person_ids, company_ids = _build_contacts(b, people, companies, first_id=1000)
    collections = _build_collections(b)
    _build_matters(b, matters, staff_list, person_ids, company_ids, collections)
    _build_billing(b, staff_list)
    _build_steps(b)
    b.summary.records = {name: len(rows) for name, rows in sorted(b.resources.items())}
    return ActionstepDataset(resources=b.resources, summary=b.summary)


def write_dataset(dataset: ActionstepDataset, out: Path) -> list[Path]:
    """One `<resource>.json` per resource (a list of records) plus `summary.json`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in sorted(dataset.resources.items()):
        path = out / f"{name}.json"
        path.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    summary = out / "summary.json"
    summary.write_text(json.dumps(asdict(dataset.summary), indent=1) + "\n", encoding="utf-8")
    return [*written, summary]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic Actionstep dataset as JSON files.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--matters", type=int, default=60)
    parser.add_argument("--people", type=int, default=355)
    parser.add_argument("--companies", type=int, default=40)
    parser.add_argument("--staff", type=int, default=6)
    args = parser.parse_args(argv)
    dataset = generate_dataset(args.seed, matters=args.matters, people=args.people,
                               companies=args.companies, staff=args.staff)
    written = write_dataset(dataset, args.out)
    print(f"wrote {len(written)} files to {args.out}: {json.dumps(dataset.summary.records)}")


if __name__ == "__main__":
    main()
