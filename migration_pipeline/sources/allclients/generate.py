"""Deterministic generator of realistic, deliberately messy AllClients CSV exports.

Writes `Users.csv`, `Contacts.csv` and `Notes.csv` (the project's documented AllClients input
format) and returns an `ExportSummary` with the exact number of every messy case it planted,
so tests can reconcile migration results against it.

Rows are streamed to disk: memory stays flat whatever `rows` is (the only per-company state is
one byte per company). The same `seed` and `rows` always give byte-identical files. Big exports
are cut into fixed-size chunks with their own derived seeds, which worker processes can write in
parallel; the bytes do not depend on the number of workers.

    python -m migration_pipeline.sources.allclients.generate --out DIR --rows 300 --seed 7

Matching rules the planted cases are counted against (mirrors `engine/transforms.py`):
- companies: case, accents, punctuation, whitespace, "&" = "and" and trailing legal suffixes
  (Inc., LLC, L.L.C., Corp., Ltd, Limited, GmbH, Co., Company, PLC, S.A. ...) are ignored;
  "N/A", "-", "none", "Inc." ... normalise to nothing (unresolvable);
- emails are compared trimmed and lower-cased; notes fall back from ContactID to Email, then
  to FirstName + LastName (accent- and case-insensitive) when exactly one contact matches.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from migration_pipeline.engine.run_settings import SETTINGS_FILE

CONTACT_COLUMNS: tuple[str, ...] = (
    "ContactID", "TeamMemberID", "FirstName", "LastName", "OtherFirstName", "OtherLastName",
    "Company", "Website", "Address", "City", "State", "PostalCode",
    "Phone1", "Phone1Note", "Phone2", "Phone2Note", "Phone3", "Phone3Note", "Phone4", "Phone4Note",
    "Email", "OtherEmail", "Birthday", "OtherBirthday", "Category", "Category2", "Source", "Flags",
    "Custom1", "Custom2", "Custom3", "Custom4", "AddDate", "EditDate",
)  # fmt: skip
NOTE_COLUMNS: tuple[str, ...] = ("ContactID", "Email", "FirstName", "LastName", "NoteDate", "Note")
USER_COLUMNS: tuple[str, ...] = ("TeamMemberID", "FirstName", "LastName", "Email")

CONTACTS_FILE = "Contacts.csv"
NOTES_FILE = "Notes.csv"
USERS_FILE = "Users.csv"


@dataclass
class ExportSummary:
    """Exact counts of what was written. Email/date/phone counts are per cell, the rest per row."""

    contacts: int = 0
    notes: int = 0
    users: int = 0
    # Companies: distinct after normalisation, and the extra raw spellings a deduper must merge
    # (= distinct raw spellings - companies_distinct).
    companies_distinct: int = 0
    company_spelling_variants: int = 0
    contacts_with_variant_spelling: int = 0  # Company cell is not the canonical spelling
    contacts_with_company: int = 0  # Company cell resolves to a company
    blank_companies: int = 0
    unresolvable_company_values: int = 0  # "N/A", "-", "none", "Inc." ...
    company_websites: int = 0
    # Emails (Email column unless noted).
    missing_emails: int = 0  # blank Email
    invalid_emails: int = 0  # non-blank Email that is not an address
    duplicate_emails: int = 0  # contacts whose valid Email exactly repeats an earlier contact's
    messy_emails: int = 0  # valid but padded with spaces and/or mixed case
    other_emails: int = 0  # non-blank OtherEmail (always valid)
    second_persons: int = 0  # OtherFirstName filled
    # Dates: AddDate/EditDate cells that do not parse.
    bad_dates: int = 0
    # Phones (cells in Phone1..Phone4).
    phones: int = 0
    international_phones: int = 0
    phones_with_extension: int = 0
    invalid_phones: int = 0
    flag_case_duplicates: int = 0  # Flags cells holding the same tag twice ("VIP, vip")
    invalid_custom_numbers: int = 0  # Custom2 cells that are not numbers
    # Owners.
    unknown_owner_contacts: int = 0  # TeamMemberID not in Users.csv (and not "0")
    non_member_owner_contacts: int = 0  # owned by NON_MEMBER_USER_EMAIL
    # Notes: by_contact_id + by_email + by_name + unmatched + dangling == notes.
    notes_by_contact_id: int = 0
    notes_by_email_fallback: int = 0
    notes_by_name_fallback: int = 0
    notes_unmatched: int = 0  # no ContactID; Email and name match no contact
    notes_dangling_contact_id: int = 0  # ContactID of a contact that is not in Contacts.csv
    notes_multiline: int = 0
    notes_with_prefix: int = 0  # start with [[System]] / [[Icon:...]]

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# --- users ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    team_member_id: str
    first_name: str
    last_name: str
    email: str

    def row(self) -> list[str]:
        return [self.team_member_id, self.first_name, self.last_name, self.email]


USERS: tuple[User, ...] = (
    User("7301", "Olivia", "Brandt", "owner@brightpath.example"),
    User("7305", "Dana", "Whitfield", "dana@brightpath.example"),
    User("7312", "Marcus", "Lee", "marcus@brightpath.example"),
    User("7340", "Priya", "Raman", "priya@brightpath.example"),
    User("7388", "Greg", "Holt", "former.employee@brightpath.example"),
)
ACCOUNT_OWNER = USERS[0]  # Contacts refer to the owner as TeamMemberID "0"
OWNER_ALIAS = "0"
NON_MEMBER_USER_EMAIL = "former.employee@brightpath.example"  # not a member of the workspace
UNKNOWN_TEAM_MEMBER_IDS: tuple[str, ...] = ("7399", "7402", "7415")
# Cumulative shares of the known owners: "0" (owner), Dana, Marcus, Priya, Greg (non-member).
OWNER_CHOICES: tuple[tuple[float, str], ...] = (
    (0.40, OWNER_ALIAS), (0.58, "7305"), (0.76, "7312"), (0.92, "7340"), (1.0, "7388"),
)  # fmt: skip
NON_MEMBER_TEAM_MEMBER_ID = "7388"
_OWNER_CDF = tuple(bound for bound, _ in OWNER_CHOICES)
_OWNER_IDS = tuple(member for _, member in OWNER_CHOICES)

# --- text folding (for email local parts and domains) -----------------------------------------

_NON_DECOMPOSING = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "ß": "ss", "Æ": "AE",
                                  "æ": "ae", "Đ": "D", "đ": "d", "ı": "i"})  # fmt: skip
_ROMANISED = {"李": "li", "王": "wang", "张": "zhang", "陈": "chen", "伟": "wei", "芳": "fang",
              "秀英": "xiuying", "北京": "beijing", "娜": "na"}  # fmt: skip


def ascii_fold(value: str) -> str:
    """Lower-case ASCII letters only: 'Łukasz Żółć' -> 'lukaszzolc', '李' -> 'li'."""
    if value in _ROMANISED:
        return _ROMANISED[value]
    decomposed = unicodedata.normalize("NFKD", value.translate(_NON_DECOMPOSING))
    return "".join(ch for ch in decomposed.lower() if "a" <= ch <= "z")


# --- people -----------------------------------------------------------------------------------

# Each list must stay unique after accent/case folding (the name-fallback guarantee needs it).
FIRST_NAMES: tuple[str, ...] = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark",
    "Margaret", "Steven", "Sandra", "Paul", "Ashley", "Andrew", "Emily", "Joshua", "Donna",
    "Kevin", "Michelle", "Brian", "Carol", "George", "Amanda", "Timothy", "Melissa", "Ronald",
    "Deborah", "Jason", "Stephanie", "Ryan", "Rebecca", "Jacob", "Laura", "Gary", "Sharon",
    "José", "Zoë", "Łukasz", "Ørjan", "伟", "芳", "秀英", "Siobhán", "Björn", "Chloé", "Renée",
    "François", "Søren", "Mateo", "Ana", "Aoife", "Dmitri", "Ngozi", "Priyanka", "Kenji", "Fatima",
    "Jürgen", "Inés", "Ångström", "Thandiwe", "Mei", "Olumide", "Paulina", "Henrik", "Giulia",
)  # fmt: skip
LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Taylor", "Moore",
    "Jackson", "Martin", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker",
    "Young", "Allen", "King", "Wright", "Scott", "Torres", "Hill", "Green", "Adams", "Baker",
    "Nelson", "Carter", "Mitchell", "Roberts", "Turner", "Phillips", "Campbell", "Parker", "Evans",
    "Edwards", "Collins", "Stewart", "Morris", "Murphy", "Cook", "Rogers", "Morgan", "Peterson",
    "Álvarez", "Brontë", "Żółć", "Håland", "李", "王", "张", "陈", "O'Brien", "Müller", "Nguyễn",
    "Kowalski", "Okafor", "Novák", "Dubois", "Rossi", "Søndergaard", "Fernández", "Yamamoto",
    "Ivanova", "Schröder", "MacLeod", "Papadopoulos", "Haddad", "Lindqvist", "Çelik", "Jovanović",
    "Abernathy", "Whitaker", "Castillo", "Delgado", "Hoffmann", "Kaczmarek", "Larsen", "Moreau",
)  # fmt: skip
_NAME_ASCII: dict[str, str] = {name: ascii_fold(name) for name in FIRST_NAMES + LAST_NAMES}


def ascii_name(name: str) -> str:
    """ascii_fold for email local parts, precomputed for the name lists (hot path)."""
    return _NAME_ASCII.get(name) or ascii_fold(name) or "x"


# --- companies --------------------------------------------------------------------------------

# Planted families: every spelling of a family normalises to the same company.
# (canonical spelling first, domain used for its emails and website)
COMPANY_FAMILIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("Acme Inc.", "ACME, Inc", "Acme Incorporated", "acme inc", " Acme  Inc "), "acme.example"),
    (("Blue Harbor LLC", "Blue Harbor, L.L.C.", "blue harbor llc"), "blueharbor.example"),
    (("Nordwind GmbH", "Nordwind", "NORDWIND GMBH"), "nordwind.example"),
    (("Smith & Sons Ltd", "Smith and Sons Limited", "Smith & Sons"), "smithandsons.example"),
    (("Zoë's Café Corp.", "Zoe's Cafe Corporation", "ZOË'S CAFÉ"), "zoescafe.example"),
    (("Café Münster GmbH", "Cafe Munster", "café münster gmbh"), "cafemunster.example"),
    (("Pacific Rim Co.", "Pacific Rim Company", "PACIFIC RIM CO"), "pacificrim.example"),
    (("Initech S.A.", "Initech SA", "Initech"), "initech.example"),
)
_FAMILY_SPELLINGS: tuple[tuple[int, int], ...] = tuple(
    (family, spelling)
    for family, (spellings, _) in enumerate(COMPANY_FAMILIES)
    for spelling in range(len(spellings))
)
UNRESOLVABLE_COMPANY_VALUES: tuple[str, ...] = ("N/A", "-", "none", "Inc.", "n/a", "--", "NONE")

# Pool companies are "<A> <B> <C> [suffix]"; every word folds to a distinct token that is neither
# a legal suffix nor "and", so distinct (a, b, c) never normalise to the same company.
_COMPANY_A: tuple[str, ...] = (
    "Silver", "Golden", "Red", "Green", "Northern", "Southern", "Eastern", "Western", "Granite",
    "Cedar", "Maple", "Oak", "Pine", "Summit", "Valley", "River", "Lake", "Ocean", "Prairie",
    "Desert", "Iron", "Copper", "Crystal", "Evergreen", "Sunrise", "Sunset", "Liberty", "Pioneer",
    "Heritage", "Keystone", "Landmark", "Meridian", "Horizon", "Atlas", "Beacon", "Crescent",
    "Falcon", "Harbor", "Lotus", "Nordic", "Polar", "Quantum", "Royal", "Sterling", "Trinity",
    "Unity", "Vista", "Zenith", "Münchner", "Århus",
)  # fmt: skip
_COMPANY_B: tuple[str, ...] = (
    "Creek", "Ridge", "Point", "Stone", "Bridge", "Field", "Brook", "Grove", "Hill", "Peak",
    "Rock", "Wood", "Bay", "Cove", "Crest", "Gate", "Haven", "Lane", "Mill", "Park", "Spring",
    "Star", "Tower", "View", "Well", "Wind", "Arrow", "Anchor", "Compass", "Lantern", "Forge",
    "Harvest", "Orchard", "Meadow", "Canyon", "Mesa", "Island", "Shore", "Trail", "Path",
    "Square", "Circle", "Works", "Labs", "Signal", "Pulse", "Vector", "Prism", "Brücke", "Fjord",
)  # fmt: skip
_COMPANY_C: tuple[str, ...] = (
    "Logistics", "Consulting", "Realty", "Insurance", "Dental", "Partners", "Holdings", "Media",
    "Software", "Analytics", "Construction", "Plumbing", "Electric", "Roofing", "Landscaping",
    "Catering", "Bakery", "Brewing", "Apparel", "Design", "Architects", "Engineering",
    "Financial", "Advisors", "Wealth", "Capital", "Ventures", "Health", "Clinic", "Pharmacy",
    "Veterinary", "Fitness", "Studios", "Events", "Travel", "Motors", "Auto", "Marine",
    "Aviation", "Energy", "Solar", "Foods", "Farms", "Organics", "Textiles", "Printing",
    "Publishing", "Security", "Staffing", "Education",
)  # fmt: skip
_COMPANY_A_ASCII = tuple(ascii_fold(word) for word in _COMPANY_A)
_COMPANY_B_ASCII = tuple(ascii_fold(word) for word in _COMPANY_B)
_COMPANY_C_ASCII = tuple(ascii_fold(word) for word in _COMPANY_C)
_POOL_CAPACITY = len(_COMPANY_A) * len(_COMPANY_B) * len(_COMPANY_C)
_POOL_STRIDE = 7919  # prime, coprime with the capacity: spreads consecutive pool indices
_POOL_SUFFIXES: tuple[str, ...] = ("Inc.", "LLC", "Corp.", "Ltd", "Co.", "GmbH", "PLC", "", "", "")
_SUFFIX_ALTERNATIVES = {"Inc.": "Incorporated", "LLC": "L.L.C.", "Corp.": "Corporation",
                        "Ltd": "Limited", "Co.": "Company", "GmbH": "G.m.b.H.", "PLC": "P.L.C.",
                        "": "Inc."}  # fmt: skip
VARIANT_PRONE_EVERY = 6  # every 6th pool company is spelled several ways


def pool_company(index: int) -> tuple[tuple[str, ...], str]:
    """Spellings (canonical first) and web domain of pool company `index` (0-based)."""
    permuted = (index * _POOL_STRIDE) % _POOL_CAPACITY
    a, rest = divmod(permuted, len(_COMPANY_B) * len(_COMPANY_C))
    b, c = divmod(rest, len(_COMPANY_C))
    base = f"{_COMPANY_A[a]} {_COMPANY_B[b]} {_COMPANY_C[c]}"
    suffix = _POOL_SUFFIXES[index % len(_POOL_SUFFIXES)]
    canonical = f"{base} {suffix}" if suffix else base
    domain = f"{_COMPANY_A_ASCII[a]}{_COMPANY_B_ASCII[b]}{_COMPANY_C_ASCII[c]}.example"
    if index % VARIANT_PRONE_EVERY:
        return (canonical,), domain
    alternative = _SUFFIX_ALTERNATIVES[suffix]
    padded = "  " + base.replace(" ", "  ") + (f" {suffix}" if suffix else "") + " "
    variants = (
        canonical,
        f"{base}, {suffix}" if suffix else base.upper(),
        f"{base} {alternative}",
        base if suffix else base.lower(),
        padded,
        canonical.upper(),
        canonical.lower(),
    )
    return tuple(dict.fromkeys(variants)), domain  # unique, order kept


# --- contacts' other fields -------------------------------------------------------------------

FREE_MAIL_DOMAINS: tuple[str, ...] = ("gmail.example", "yahoo.example", "hotmail.example",
                                      "outlook.example")  # fmt: skip
# Domains no contact uses: ghost senders of unmatched notes.
GHOST_MAIL_DOMAINS: tuple[str, ...] = ("aol.example", "oldcrm.example")
INVALID_EMAILS: tuple[str, ...] = ("bob@", "n/a", "jane.doe@@x.example", "mary at acme.example",
                                   "john.smith@gmail", "@yahoo.example", "none")  # fmt: skip
BAD_DATES: tuple[str, ...] = ("13/45/2020 9:00:00 AM", "not a date", "2020-02-30",
                              "0/0/0000 12:00:00 AM")  # fmt: skip
GARBAGE_PHONES: tuple[str, ...] = ("call me", "12", "see notes", "555")
US_AREA_CODES: tuple[str, ...] = ("201", "212", "312", "415", "617", "646", "702", "713", "305",
                                  "404", "503", "206", "720", "919", "512")  # fmt: skip
INTERNATIONAL_PHONE_FORMATS: tuple[tuple[str, int], ...] = (
    ("+44 20 7946 0{:03d}", 1000), ("+44 161 496 0{:03d}", 1000), ("+61 2 5550 {:04d}", 10000),
    ("+33 1 99 00 {:04d}", 10000), ("+49 30 9018 {:04d}", 10000), ("+52 55 5555 {:04d}", 10000),
)  # fmt: skip
_US_PHONES: tuple[str, ...] = tuple(f"({area}) 555-01{line:02d}" for area in US_AREA_CODES for line in range(100))
PHONE_LABELS: tuple[str, ...] = ("work", "home", "mobile", "Work", "Mobile", "fax", "")
# Cumulative share of contacts with 0..4 phones (most 1-2, a few 4).
PHONE_COUNT_CDF: tuple[float, ...] = (0.08, 0.53, 0.88, 0.95, 1.0)
NOTE_COUNT_CDF: tuple[float, ...] = (0.15, 0.40, 0.65, 0.85, 0.95, 1.0)  # 0..5, mean 2.0
CATEGORIES: tuple[str, ...] = ("Client", "Client", "Prospect", "Prospect", "Vendor", "Partner",
                               "Former Client", "")  # fmt: skip
CATEGORIES_2: tuple[str, ...] = ("Residential", "Commercial", "Gold", "Silver", "", "", "")
SOURCES: tuple[str, ...] = ("Referral", "Web", "Event", "Cold Call", "Trade Show",
                            "Social Media", "", "")  # fmt: skip
FLAG_TAGS: tuple[str, ...] = ("VIP", "Newsletter", "Golf", "Holiday Card", "Do Not Call",
                              "Hot Lead", "Referral Partner")  # fmt: skip
FLAG_COUNT_CDF: tuple[float, ...] = (0.35, 0.70, 0.90, 1.0)  # 0..3 tags
# Every set of 0..3 distinct tags, by size (precomputed: the Flags cell is on the hot path).
_FLAG_SETS: tuple[tuple[tuple[str, ...], ...], ...] = tuple(
    tuple(itertools.combinations(FLAG_TAGS, size)) for size in range(len(FLAG_COUNT_CDF))
)
STREETS: tuple[str, ...] = ("Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Park Blvd",
                            "Washington St", "Lakeview Rd", "Sunset Blvd", "Elm Street",
                            "Highland Ave", "Mission St", "Broadway")  # fmt: skip
US_CITIES: tuple[tuple[str, str, str], ...] = (
    ("New York", "NY", "100"), ("San Francisco", "CA", "941"), ("Chicago", "IL", "606"),
    ("Boston", "MA", "021"), ("Austin", "TX", "787"), ("Seattle", "WA", "981"),
    ("Denver", "CO", "802"), ("Miami", "FL", "331"), ("Atlanta", "GA", "303"),
    ("Portland", "OR", "972"), ("Raleigh", "NC", "276"), ("Las Vegas", "NV", "891"),
    ("San José", "CA", "951"), ("Santa Fe", "NM", "875"),
)  # fmt: skip
FOREIGN_ADDRESSES: tuple[tuple[str, str, str, str], ...] = (
    ("Königstraße 12", "München", "Bayern", "80331"), ("221B Baker Street", "London", "", "NW1 6XE"),
    ("Rue de Rivoli 14", "Paris", "Île-de-France", "75001"), ("Storgata 5", "Tromsø", "", "9008"),
    ("ul. Żurawia 6", "Warszawa", "", "00-503"), ("朝阳区建国路 88号", "北京", "", "100022"),
)  # fmt: skip

NOTE_TEMPLATES: tuple[str, ...] = (
    "Called {first} re: renewal. Left voicemail.",
    "Met {first} for coffee at {company}; discussed \"annual review\", follow up next week.",
    "Meeting notes:\n- reviewed coverage, {amount} limit\n- spouse wants a quote too\n\nNext step: send proposal",
    "Sent birthday card 🎂",
    "{first} asked to be called after 5pm, prefers mobile.",
    "Rückruf erbeten — spricht Deutsch, Termin am Dienstag.",
    "Quote sent: {amount}, valid 30 days. Waiting on signature",
    "Voicemail:\n\"Hi, it's {first}, call me back about the invoice, thanks\"",
    "Referred by a friend; interested in the premium plan, budget around {amount}.",
    "Address updated per client's email.\nOld address kept in the history.",
)
_MULTILINE_TEMPLATES = frozenset(template for template in NOTE_TEMPLATES if "\n" in template)
SYSTEM_NOTES: tuple[tuple[str, str], ...] = (
    ("[[System]] ", "Contact added to ClientTouch program 'Welcome Series'"),
    ("[[System]] ", "Flag 'VIP' added"),
    ("[[Icon:Email]] ", "Email sent: Your {company} quote"),
    ("[[Icon:Text]] ", "Text message sent: Reminder for tomorrow's meeting"),
    ("[[Icon:Calendar]] ", "Appointment scheduled with {first}"),
)

_EPOCH = datetime(2009, 1, 1)  # dates are handled as whole seconds since this local midnight
EXPORT_TIME = datetime(2025, 6, 30, 17, 0)  # the fixed "now" of the export: nothing is later
_EXPORT_SECOND = int((EXPORT_TIME - _EPOCH).total_seconds())
_LAST_ADD_SECOND = int((datetime(2025, 1, 1) - _EPOCH).total_seconds())
_DAY = 86400
# Lookup tables make date formatting cheap on the hot path (a few thousand short strings).
_DAY_LABELS: tuple[str, ...] = tuple(
    f"{d.month}/{d.day}/{d.year}" for d in (_EPOCH + timedelta(days=n) for n in range(_EXPORT_SECOND // _DAY + 1))
)
_CLOCK_LABELS: tuple[str, ...] = tuple(f"{(m // 60) % 12 or 12}:{m % 60:02d}" for m in range(1440))
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MONTH_DAY_LABELS: tuple[str, ...] = tuple(
    f"{month:02d}/{day:02d}" for month, days in enumerate(_MONTH_DAYS, 1) for day in range(1, days + 1)
)  # "MM/DD" for every day of a non-leap year
_YES_NO: tuple[str, ...] = ("Yes", "No", "", "")
_NOTE_AMOUNTS: tuple[str, ...] = tuple(f"${hundreds * 100:,}" for hundreds in range(5, 501))
_POPCOUNT = bytes(bin(i).count("1") for i in range(256))


def format_add_date(second: int) -> str:
    """Contact date-time, `second` after _EPOCH: '2/15/2014 1:15:05 PM' (no leading zeros)."""
    day, rest = divmod(second, _DAY)
    minute, sec = divmod(rest, 60)
    return f"{_DAY_LABELS[day]} {_CLOCK_LABELS[minute]}:{sec:02d} {'PM' if minute >= 720 else 'AM'}"


def format_note_date(second: int) -> str:
    """Note date-time, `second` after _EPOCH: '10/2/2014 3:22 PM'."""
    day, rest = divmod(second, _DAY)
    minute = rest // 60
    return f"{_DAY_LABELS[day]} {_CLOCK_LABELS[minute]} {'PM' if minute >= 720 else 'AM'}"


class _Cadence:
    """Fires roughly once every `mean` rows (jittered) until consumed.

    Used for rare planted cases instead of a plain probability so that small exports still get
    every case and large ones keep the rate. A case that cannot be planted on the current row
    stays due until a row can take it.
    """

    def __init__(self, rng: random.Random, mean: int) -> None:
        self._rng = rng
        self._low = self.min_gap(mean)
        self._spread = mean * 3 // 2 - self._low + 1
        self._next = 1 + int(rng.random() * mean)

    @staticmethod
    def min_gap(mean: int) -> int:
        return max(1, mean // 2)

    def due(self, row: int) -> bool:
        return row >= self._next

    def consume(self, row: int) -> None:
        self._next = row + self._low + int(self._rng.random() * self._spread)


@dataclass(slots=True)
class _Contact:
    """What the notes of a contact need to know about it."""

    contact_id: str
    first_name: str
    last_name: str
    email_clean: str  # the Email cell, trimmed
    email_matchable: bool  # valid and held by this contact only
    company_label: str  # how notes refer to the company
    added: int  # seconds after _EPOCH


# Rows are generated in fixed-size chunks, each from its own seed, so chunks can be written in
# parallel and the output does not depend on the number of workers.
CHUNK_ROWS = 50_000
MAX_CONTACT_ID_GAP = 5  # each chunk owns CHUNK_ROWS * 5 contact ids, so chunks never collide
_NAME_GENERATIONS: tuple[str, ...] = ("", " Jr.", " Sr.", " II", " III", " IV")
_UNIQUE_NAME_CAPACITY = len(FIRST_NAMES) * len(LAST_NAMES) * (len(LAST_NAMES) - 1)
# Mean gap (in contacts) between rare planted cases.
CADENCE_MEANS: dict[str, int] = {
    "unresolvable_company": 60, "invalid_email": 50, "duplicate_email": 100, "messy_email": 25,
    "bad_date": 80, "unknown_owner": 50, "garbage_phone": 60, "messy_flags": 40,
    "invalid_custom": 45, "email_note": 40, "name_note": 40, "unmatched_note": 50,
    "dangling_note": 75,
}  # fmt: skip


def _unique_names_per_chunk(chunk_rows: int) -> int:
    """Upper bound of unique names one chunk uses (one per name/unmatched/dangling note)."""
    return sum(chunk_rows // _Cadence.min_gap(CADENCE_MEANS[case]) + 1
               for case in ("name_note", "unmatched_note", "dangling_note"))  # fmt: skip


@dataclass(frozen=True)
class _Chunk:
    seed: int
    index: int
    first_row: int
    rows: int
    chunk_rows: int
    total_rows: int


class _ChunkWriter:
    """Writes one chunk of contacts (and their notes) and counts what it planted."""

    def __init__(self, chunk: _Chunk, contacts: Any, notes: Any) -> None:
        self.chunk = chunk
        self.rng = random.Random(f"allclients:{chunk.seed}:{chunk.index}")
        self.random = self.rng.random
        self.contacts = contacts
        self.notes = notes
        self.summary = ExportSummary()
        self.pool_size = pool_size(chunk.total_rows)
        # Bit k of byte i: spelling k of company i was written (families first, then the pool).
        self.spellings_used = bytearray(len(COMPANY_FAMILIES) + self.pool_size)
        self.family_share = min(0.10, 100 / chunk.total_rows)
        # Round-robin over all family spellings; chunks start at different points of the cycle.
        self.family_cursor = chunk.first_row % len(_FAMILY_SPELLINGS)
        self.next_contact_id = 10001 + chunk.index * chunk.chunk_rows * MAX_CONTACT_ID_GAP
        self.deleted_contact_id: str | None = None
        self.pending_duplicate: str | None = None
        names_per_chunk = _unique_names_per_chunk(chunk.chunk_rows)
        self.next_unique_name = chunk.index * names_per_chunk
        self.unique_name_limit = self.next_unique_name + names_per_chunk
        self.bad_date_cursor = 0
        cadence = {case: _Cadence(self.rng, mean) for case, mean in CADENCE_MEANS.items()}
        self.unresolvable_company_cadence = cadence["unresolvable_company"]
        self.invalid_email_cadence = cadence["invalid_email"]
        self.duplicate_email_cadence = cadence["duplicate_email"]
        self.messy_email_cadence = cadence["messy_email"]
        self.bad_date_cadence = cadence["bad_date"]
        self.unknown_owner_cadence = cadence["unknown_owner"]
        self.garbage_phone_cadence = cadence["garbage_phone"]
        self.messy_flags_cadence = cadence["messy_flags"]
        self.invalid_custom_cadence = cadence["invalid_custom"]
        self.email_note_cadence = cadence["email_note"]
        self.name_note_cadence = cadence["name_note"]
        self.unmatched_note_cadence = cadence["unmatched_note"]
        self.dangling_note_cadence = cadence["dangling_note"]

    # -- helpers ------------------------------------------------------------------------------

    def pick(self, options: Sequence[str]) -> str:
        return options[int(self.random() * len(options))]

    def chance(self, probability: float) -> bool:
        return self.random() < probability

    def between(self, low: int, high: int) -> int:
        """Uniform integer in [low, high]; cheaper than Random.randint on the hot path."""
        return low + int(self.random() * (high - low + 1))

    def from_cdf(self, cdf: Sequence[float]) -> int:
        """Index drawn from a cumulative distribution whose last bound is 1.0."""
        return bisect_right(cdf, self.random())

    def unique_name(self) -> tuple[str, str]:
        """A first + hyphenated last name no other generated person has (contact or ghost).

        Common names never contain a hyphen, and each number maps to a different name.
        """
        number = self.next_unique_name
        if number >= self.unique_name_limit:
            raise RuntimeError("chunk used more unique names than reserved")
        self.next_unique_name += 1
        generation, n = divmod(number, _UNIQUE_NAME_CAPACITY)
        if generation >= len(_NAME_GENERATIONS):
            raise ValueError("too many rows for unique-name planting; extend the name lists")
        n = (n * 104729) % _UNIQUE_NAME_CAPACITY  # prime stride: varied order, still unique
        lasts = len(LAST_NAMES)
        first, rest = divmod(n, lasts * (lasts - 1))
        one, offset = divmod(rest, lasts - 1)
        two = (one + 1 + offset) % lasts
        return FIRST_NAMES[first], f"{LAST_NAMES[one]}-{LAST_NAMES[two]}{_NAME_GENERATIONS[generation]}"

    # -- contact fields -----------------------------------------------------------------------

    def contact_id(self) -> str:
        current = self.next_contact_id
        gap = 1 if self.chance(0.85) else self.between(2, 5)
        if gap > 1:
            self.deleted_contact_id = str(current + gap - 1)
        self.next_contact_id = current + gap
        return str(current)

    def owner(self, row: int) -> str:
        if self.unknown_owner_cadence.due(row):
            self.unknown_owner_cadence.consume(row)
            self.summary.unknown_owner_contacts += 1
            return self.pick(UNKNOWN_TEAM_MEMBER_IDS)
        owner = _OWNER_IDS[self.from_cdf(_OWNER_CDF)]
        if owner == NON_MEMBER_TEAM_MEMBER_ID:
            self.summary.non_member_owner_contacts += 1
        return owner

    def company(self, row: int) -> tuple[str, str]:
        """(Company cell, company web domain or '')."""
        summary = self.summary
        if self.unresolvable_company_cadence.due(row):
            self.unresolvable_company_cadence.consume(row)
            summary.unresolvable_company_values += 1
            return self.pick(UNRESOLVABLE_COMPANY_VALUES), ""
        draw = self.random()
        if draw < 0.18:
            summary.blank_companies += 1
            return "", ""
        if draw < 0.18 + self.family_share:
            family, spelling = _FAMILY_SPELLINGS[self.family_cursor % len(_FAMILY_SPELLINGS)]
            self.family_cursor += 1
            spellings, domain = COMPANY_FAMILIES[family]
            slot = family
        else:
            index = int(self.pool_size * self.random() ** 2)  # a few big, many small
            spellings, domain = pool_company(index)
            spelling = 0 if len(spellings) == 1 or self.chance(0.5) else self.between(1, len(spellings) - 1)
            slot = len(COMPANY_FAMILIES) + index
        self.spellings_used[slot] |= 1 << spelling
        summary.contacts_with_company += 1
        if spelling:
            summary.contacts_with_variant_spelling += 1
        return spellings[spelling], domain

    def website(self, domain: str) -> str:
        if not domain or not self.chance(0.25):
            return ""
        self.summary.company_websites += 1
        return self.pick((f"www.{domain}", f"https://{domain}/", f"http://www.{domain}", domain))

    def address(self) -> tuple[str, str, str, str]:
        random = self.random
        draw = random()
        if draw < 0.15:
            return "", "", "", ""
        if draw < 0.20:
            return FOREIGN_ADDRESSES[int(random() * len(FOREIGN_ADDRESSES))]
        city, state, zip_prefix = US_CITIES[int(random() * len(US_CITIES))]
        street = f"{1 + int(random() * 9999)} {STREETS[int(random() * len(STREETS))]}"
        if draw > 0.88:  # ~15% of US addresses
            street += f", Suite {10 + 10 * int(random() * 40)}"
        return street, city, state, f"{zip_prefix}{int(random() * 100):02d}"

    def phone(self, row: int) -> str:
        summary = self.summary
        summary.phones += 1
        if self.garbage_phone_cadence.due(row):
            self.garbage_phone_cadence.consume(row)
            summary.invalid_phones += 1
            return self.pick(GARBAGE_PHONES)
        draw = self.random()
        if draw < 0.07:
            summary.international_phones += 1
            template, size = INTERNATIONAL_PHONE_FORMATS[int(self.random() * len(INTERNATIONAL_PHONE_FORMATS))]
            return template.format(int(self.random() * size))
        number = _US_PHONES[int(self.random() * len(_US_PHONES))]
        if draw < 0.11:
            summary.phones_with_extension += 1
            number += self.pick((" x", " ext. ", " x")) + str(self.between(2, 999))
        return number

    def phones(self, row: int) -> list[str]:
        cells = [""] * 8
        for slot in range(self.from_cdf(PHONE_COUNT_CDF)):
            cells[2 * slot] = self.phone(row)
            cells[2 * slot + 1] = PHONE_LABELS[int(self.random() * len(PHONE_LABELS))]
        return cells

    def email_address(self, first_ascii: str, last_ascii: str, tag: int, domain: str) -> str:
        """A valid address unique by construction: the local part ends with this cell's tag."""
        style = int(self.random() * 4)
        if style == 0:
            local = f"{first_ascii}.{last_ascii}{tag}"
        elif style == 1:
            local = f"{first_ascii[:1]}{last_ascii}{tag}"
        elif style == 2:
            local = f"{first_ascii}{tag}"
        else:
            local = f"{first_ascii}_{last_ascii}{tag}"
        return f"{local}@{domain}"

    def mail_domain(self, company_domain: str) -> str:
        if company_domain and self.chance(0.55):
            return company_domain
        return self.pick(FREE_MAIL_DOMAINS)

    def primary_email(
        self, row: int, tag: int, first_ascii: str, last_ascii: str, company_domain: str
    ) -> tuple[str, bool]:
        """(Email cell, whether a note may fall back to it: valid and held by this contact only)."""
        summary = self.summary
        if self.pending_duplicate is not None and self.chance(0.5):
            email, self.pending_duplicate = self.pending_duplicate, None
            summary.duplicate_emails += 1
            return email, False
        if self.invalid_email_cadence.due(row):
            self.invalid_email_cadence.consume(row)
            summary.invalid_emails += 1
            return self.pick(INVALID_EMAILS), False
        if self.chance(0.08):
            summary.missing_emails += 1
            return "", False
        email = self.email_address(first_ascii, last_ascii, tag, self.mail_domain(company_domain))
        if self.messy_email_cadence.due(row):
            self.messy_email_cadence.consume(row)
            summary.messy_emails += 1
            local, domain = email.split("@")
            return f" {local.title()}@{domain.title()} ", True
        if self.pending_duplicate is None and self.duplicate_email_cadence.due(row):
            self.duplicate_email_cadence.consume(row)
            self.pending_duplicate = email  # a later contact repeats it exactly
            return email, False
        return email, True

    def birthday(self, with_year: float = 0.75) -> str:
        random = self.random
        if random() < 0.4:
            return ""
        month_day = _MONTH_DAY_LABELS[int(random() * 365)]
        if random() < with_year:
            return f"{month_day}/{1940 + int(random() * 63)}"
        return month_day

    def dates(self, row: int) -> tuple[str, str, int]:
        random = self.random
        added = int(random() * _LAST_ADD_SECOND)
        # Edited (and noted, see write_note) after adding, mostly soon after; never after the export.
        edited = added if random() < 0.1 else added + int((_EXPORT_SECOND - added) * random() ** 2)
        add_cell, edit_cell = format_add_date(added), format_add_date(edited)
        if self.bad_date_cadence.due(row):
            self.bad_date_cadence.consume(row)
            self.summary.bad_dates += 1
            bad = BAD_DATES[self.bad_date_cursor % len(BAD_DATES)]
            self.bad_date_cursor += 1
            if self.chance(0.5):
                add_cell = bad
            else:
                edit_cell = bad
        return add_cell, edit_cell, added

    def flags(self, row: int) -> str:
        options = _FLAG_SETS[self.from_cdf(FLAG_COUNT_CDF)]
        tags = options[int(self.random() * len(options))]
        if tags and self.messy_flags_cadence.due(row):
            self.messy_flags_cadence.consume(row)
            self.summary.flag_case_duplicates += 1
            return f"{tags[0]} ,{' , '.join(tags[1:] + (tags[0].lower(),))}"
        return ", ".join(tags)

    def custom_fields(self, row: int) -> list[str]:
        random = self.random
        partner = ""
        if random() < 0.35:
            partner = f"{FIRST_NAMES[int(random() * len(FIRST_NAMES))]} {LAST_NAMES[int(random() * len(LAST_NAMES))]}"
        value = ""
        if self.invalid_custom_cadence.due(row):
            self.invalid_custom_cadence.consume(row)
            self.summary.invalid_custom_numbers += 1
            value = self.pick(("n/a", "TBD", "twelve hundred"))
        elif random() < 0.5:
            cents = 50_000 + int(random() * 25_000_000)
            style = int(random() * 3)
            if style == 0:
                value = f"{cents // 100}.{cents % 100:02d}"  # 12500.50
            elif style == 1:
                value = f"${cents // 100:,}"  # $1,200
            else:
                value = str(cents // 100)
        custom_date = ""
        if random() < 0.4:
            custom_date = f"{_MONTH_DAY_LABELS[int(random() * 365)]}/{2015 + int(random() * 12)}"
        return [partner, value, custom_date, _YES_NO[int(random() * len(_YES_NO))]]

    # -- rows ---------------------------------------------------------------------------------

    def write_contact(self, row: int) -> _Contact:
        """Write contact number `row` of this chunk (and its name-fallback note, if planted)."""
        summary, random = self.summary, self.random
        tag = 2 * (self.chunk.first_row + row)  # unique across the export: Email tag, +1 OtherEmail
        contact_id = self.contact_id()
        owner = self.owner(row)
        name_note_target = self.name_note_cadence.due(row)
        if name_note_target:
            first, last = self.unique_name()
        else:
            first, last = FIRST_NAMES[int(random() * len(FIRST_NAMES))], LAST_NAMES[int(random() * len(LAST_NAMES))]
        first_ascii, last_ascii = ascii_name(first), ascii_name(last)
        company, company_domain = self.company(row)
        email, email_matchable = self.primary_email(row, tag, first_ascii, last_ascii, company_domain)

        other_first = other_last = other_email = other_birthday = ""
        # Name-fallback targets have no second person, so their name stays the only match.
        if not name_note_target and random() < 0.15:
            summary.second_persons += 1
            other_first = self.pick(FIRST_NAMES)
            other_last = last if self.chance(0.7) else self.pick(LAST_NAMES)
            if self.chance(0.8):
                other_email = self.email_address(ascii_name(other_first), ascii_name(other_last),
                                                 tag + 1, self.mail_domain(company_domain))  # fmt: skip
            other_birthday = self.birthday()
        elif random() < 0.05:
            other_email = self.email_address(first_ascii, last_ascii, tag + 1, self.pick(FREE_MAIL_DOMAINS))
        if other_email:
            summary.other_emails += 1

        add_cell, edit_cell, added = self.dates(row)
        self.contacts.writerow([
            contact_id, owner, first, last, other_first, other_last,
            company, self.website(company_domain), *self.address(), *self.phones(row),
            email, other_email, self.birthday(), other_birthday,
            CATEGORIES[int(random() * len(CATEGORIES))], CATEGORIES_2[int(random() * len(CATEGORIES_2))],
            SOURCES[int(random() * len(SOURCES))], self.flags(row),
            *self.custom_fields(row), add_cell, edit_cell,
        ])  # fmt: skip
        summary.contacts += 1
        company_label = company.strip() if company_domain else "the office"
        contact = _Contact(contact_id, first, last, email.strip(), email_matchable, company_label, added)
        if name_note_target:
            self.name_note_cadence.consume(row)
            self.write_note("", "", first, last, contact)
            summary.notes_by_name_fallback += 1
        return contact

    def note_text(self, contact: _Contact) -> str:
        random = self.random
        if random() < 0.15:
            prefix, template = SYSTEM_NOTES[int(random() * len(SYSTEM_NOTES))]
            self.summary.notes_with_prefix += 1
        else:
            prefix, template = "", NOTE_TEMPLATES[int(random() * len(NOTE_TEMPLATES))]
            if template in _MULTILINE_TEMPLATES:
                self.summary.notes_multiline += 1
        amount = _NOTE_AMOUNTS[int(random() * len(_NOTE_AMOUNTS))]
        return prefix + template.format(first=contact.first_name, company=contact.company_label, amount=amount)

    def write_note(self, contact_id: str, email: str, first: str, last: str, about: _Contact) -> None:
        written = about.added + int((_EXPORT_SECOND - about.added) * self.random() ** 2)
        self.notes.writerow([contact_id, email, first, last, format_note_date(written), self.note_text(about)])
        self.summary.notes += 1

    def write_notes(self, row: int, contact: _Contact) -> None:
        summary = self.summary
        for _ in range(self.from_cdf(NOTE_COUNT_CDF)):
            self.write_note(contact.contact_id, contact.email_clean, contact.first_name, contact.last_name, contact)
            summary.notes_by_contact_id += 1
        if contact.email_matchable and self.email_note_cadence.due(row):
            self.email_note_cadence.consume(row)
            self.write_note("", contact.email_clean.lower(), contact.first_name, contact.last_name, contact)
            summary.notes_by_email_fallback += 1
        if self.unmatched_note_cadence.due(row):
            self.unmatched_note_cadence.consume(row)
            first, last = self.unique_name()
            email = ""
            if self.chance(0.6):
                email = f"{ascii_name(first)}.{self.chunk.first_row + row}@{self.pick(GHOST_MAIL_DOMAINS)}"
            self.write_note("", email, first, last, contact)
            summary.notes_unmatched += 1
        if self.deleted_contact_id and self.dangling_note_cadence.due(row):
            self.dangling_note_cadence.consume(row)
            first, last = self.unique_name()  # the deleted contact's name: matches nobody
            self.write_note(self.deleted_contact_id, "", first, last, contact)
            self.deleted_contact_id = None
            summary.notes_dangling_contact_id += 1

    def run(self) -> tuple[ExportSummary, bytes]:
        """Write the chunk; return its counts and the company spellings it used."""
        for row in range(self.chunk.rows):
            contact = self.write_contact(row)
            self.write_notes(row, contact)
        return self.summary, bytes(self.spellings_used)


def pool_size(total_rows: int) -> int:
    """Number of ordinary (word-list) companies: about one per 8 contacts."""
    return min(_POOL_CAPACITY, max(24, total_rows // 8))


def _plan(rows: int, seed: int, chunk_rows: int) -> list[_Chunk]:
    return [
        _Chunk(seed, index, first_row, min(chunk_rows, rows - first_row), chunk_rows, rows)
        for index, first_row in enumerate(range(0, rows, chunk_rows))
    ]


def _open_csv(path: Path) -> Any:
    return path.open("w", newline="", encoding="utf-8", buffering=1 << 20)


def _csv_writer(handle: Any) -> Any:
    return csv.writer(handle, lineterminator="\n")


def _write_chunk_parts(chunk: _Chunk, parts_dir: str) -> tuple[ExportSummary, bytes]:
    """Worker: write one chunk to its own part files (no header rows)."""
    parts = Path(parts_dir)
    with (
        _open_csv(parts / f"contacts-{chunk.index}.csv") as contacts,
        _open_csv(parts / f"notes-{chunk.index}.csv") as notes,
    ):
        return _ChunkWriter(chunk, _csv_writer(contacts), _csv_writer(notes)).run()


def _append_part(target: Any, part: Path) -> None:
    target.flush()
    with part.open("rb") as source:
        shutil.copyfileobj(source, target.buffer, 1 << 20)
    part.unlink()


class _Totals:
    """Adds up chunk results into the export's summary."""

    def __init__(self, total_rows: int) -> None:
        self.summary = ExportSummary(users=len(USERS))
        self.spellings_used = bytearray(len(COMPANY_FAMILIES) + pool_size(total_rows))

    def add(self, result: tuple[ExportSummary, bytes]) -> None:
        part, used = result
        for name in COUNTED_FIELDS:
            setattr(self.summary, name, getattr(self.summary, name) + getattr(part, name))
        for slot, bits in enumerate(used):
            if bits:
                self.spellings_used[slot] |= bits

    def finish(self) -> ExportSummary:
        distinct = sum(1 for bits in self.spellings_used if bits)
        self.summary.companies_distinct = distinct
        self.summary.company_spelling_variants = sum(_POPCOUNT[b] for b in self.spellings_used) - distinct
        return self.summary


# The generated account's settings: AddDate/EditDate are written in this zone.
ACCOUNT_SETTINGS = "# The AllClients account's time zone: the export does not say it.\ntimezone: America/Los_Angeles\n"

COUNTED_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(ExportSummary) if f.name not in {"users", "companies_distinct", "company_spelling_variants"}
)


def generate_export(
    out_dir: Path,
    rows: int = 300,
    seed: int = 7,
    *,
    workers: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ExportSummary:
    """Write Users.csv, Contacts.csv and Notes.csv into `out_dir`, and the `migration_settings.yaml`
    a data engineer writes beside a real export (the account's time zone, which the export does
    not say); return what was planted.

    The files depend on `rows`, `seed` and `chunk_rows` only (not on `workers`). Exports larger
    than one chunk are written by up to `workers` processes (default: one per CPU).
    """
    if rows < 0 or chunk_rows < 1:
        raise ValueError("rows must be >= 0 and chunk_rows >= 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SETTINGS_FILE).write_text(ACCOUNT_SETTINGS, encoding="utf-8")
    with _open_csv(out_dir / USERS_FILE) as users_file:
        users = _csv_writer(users_file)
        users.writerow(USER_COLUMNS)
        users.writerows(user.row() for user in USERS)

    plan = _plan(rows, seed, chunk_rows)
    workers = min(len(plan), workers or os.cpu_count() or 1)
    totals = _Totals(rows)
    with _open_csv(out_dir / CONTACTS_FILE) as contacts_file, _open_csv(out_dir / NOTES_FILE) as notes_file:
        contacts, notes = _csv_writer(contacts_file), _csv_writer(notes_file)
        contacts.writerow(CONTACT_COLUMNS)
        notes.writerow(NOTE_COLUMNS)
        if workers <= 1:
            for chunk in plan:
                totals.add(_ChunkWriter(chunk, contacts, notes).run())
        else:
            with (
                tempfile.TemporaryDirectory(dir=out_dir, prefix=".parts-") as parts_dir,
                ProcessPoolExecutor(max_workers=workers) as pool,
            ):
                results = pool.map(_write_chunk_parts, plan, [parts_dir] * len(plan))
                for chunk, result in zip(plan, results):  # in order, as chunks finish
                    _append_part(contacts_file, Path(parts_dir) / f"contacts-{chunk.index}.csv")
                    _append_part(notes_file, Path(parts_dir) / f"notes-{chunk.index}.csv")
                    totals.add(result)
    return totals.finish()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a realistic, messy AllClients CSV export.")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--rows", type=int, default=300, help="number of contacts (default 300)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per CPU)")
    args = parser.parse_args(argv)
    summary = generate_export(args.out, rows=args.rows, seed=args.seed, workers=args.workers)
    json.dump(summary.as_dict(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
