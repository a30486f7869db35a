"""The closed registry of named field transforms a mapping may reference.

Each transform takes the values of the mapped source column(s) (blank cells arrive as None)
and a context (source settings + the field's args) and returns a Twenty-shaped value, or None
for "no value". A value that cannot be converted raises `InvalidValue` with a reason an
operator can act on; the engine then quarantines the row (or blanks the field, if the
mapping says so) and lists the reason.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class InvalidValue(ValueError):
    """A source value that cannot become a Twenty value; the message is the reason shown."""


@dataclass(frozen=True)
class TransformContext:
    settings: dict[str, Any] = field(default_factory=dict)
    args: dict[str, Any] = field(default_factory=dict)
    # Problems with part of a value that the transform left out while keeping the rest (one
    # invalid address among valid ones); the engine lists each as a field issue of the record.
    notes: list[str] = field(default_factory=list)

    def option(self, name: str, default: Any = None) -> Any:
        """An arg of this field, else a source setting of the same name, else the default."""
        return self.args.get(name, self.settings.get(name, default))

    def note(self, problem: str) -> None:
        self.notes.append(problem)


Values = tuple[str | None, ...]
Transform = Callable[[Values, TransformContext], Any]
TRANSFORMS: dict[str, Transform] = {}


def transform(name: str) -> Callable[[Transform], Transform]:
    def register(fn: Transform) -> Transform:
        if name in TRANSFORMS:
            raise ValueError(f"transform {name!r} registered twice")
        TRANSFORMS[name] = fn
        return fn

    return register


def get_transform(name: str) -> Transform:
    try:
        return TRANSFORMS[name]
    except KeyError:
        raise KeyError(f"unknown transform {name!r}; known: {', '.join(sorted(TRANSFORMS))}") from None


def _present(values: Values) -> list[str]:
    return [v.strip() for v in values if v is not None and v.strip()]


def _single(values: Values) -> str | None:
    present = _present(values)
    return present[0] if present else None


# --- text ------------------------------------------------------------------------------------


@transform("text")
def text(values: Values, ctx: TransformContext) -> str | None:
    """First non-blank value, whitespace collapsed."""
    value = _single(values)
    return re.sub(r"\s+", " ", value) if value else None


@transform("join")
def join(values: Values, ctx: TransformContext) -> str | None:
    """All non-blank values joined by the `separator` arg (default a space):
    ("Client", "Smith, Ada") with separator ": " -> "Client: Smith, Ada"."""
    present = _present(values)
    return str(ctx.args.get("separator", " ")).join(present) if present else None


@transform("join_lines")
def join_lines(values: Values, ctx: TransformContext) -> str | None:
    """All non-blank values, one per line (e.g. street + city into one address note)."""
    present = _present(values)
    return "\n".join(present) if present else None


# --- keys used to compare records (dedupe and matching) --------------------------------------

LEGAL_SUFFIXES = {
    "inc", "incorporated", "llc", "corp", "corporation", "ltd", "limited", "gmbh", "co",
    "company", "plc", "sa", "ag", "bv", "pty", "lp", "llp",
}  # fmt: skip


def _fold(value: str) -> str:
    """Lower case, accents removed, '&' read as 'and', punctuation dropped, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", value)
    ascii_ish = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    ascii_ish = ascii_ish.replace("&", " and ")
    ascii_ish = re.sub(r"(?<=\b\w)\.(?=\w\.)", "", ascii_ish)  # L.L.C. -> LLC
    ascii_ish = re.sub(r"[^\w\s]", " ", ascii_ish)
    return re.sub(r"\s+", " ", ascii_ish).strip()


@transform("company_name_key")
def company_name_key(values: Values, ctx: TransformContext) -> str | None:
    """Normalised company name: case, accents, punctuation and legal suffixes ignored.

    A value that normalises to nothing ("N/A", "-", "Inc.") is not a company: InvalidValue.
    """
    value = _single(values)
    if value is None:
        return None
    words = _fold(value).split()
    while words and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    if not words or " ".join(words) in {"n a", "na", "none", "null", "unknown", "tbd"}:
        raise InvalidValue(f"company value {value!r} does not name a company")
    return " ".join(words)


@transform("name_key")
def name_key(values: Values, ctx: TransformContext) -> str | None:
    """First + last name folded for matching; None unless every part is present."""
    if len(_present(values)) != len(values):
        return None
    return " ".join(_fold(v or "") for v in values)


@transform("email_key")
def email_key(values: Values, ctx: TransformContext) -> str | None:
    value = _single(values)
    return value.lower() if value else None


FREE_MAIL_DOMAINS = {
    "gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com",
    "aol.com", "icloud.com", "me.com", "msn.com", "comcast.net", "protonmail.com", "gmx.de",
    "web.de", "mail.com", "yandex.ru", "qq.com", "163.com",
}  # fmt: skip


def _domain_of(value: str) -> str | None:
    value = value.strip().lower()
    if "@" in value:
        value = value.rsplit("@", 1)[1]
    value = re.sub(r"^[a-z]+://", "", value).split("/")[0].split(":")[0]
    value = value.removeprefix("www.")
    return value if re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", value) else None


def _is_free_mail(domain: str, ctx: TransformContext) -> bool:
    extra = set(ctx.option("free_mail_domains", []))
    first_label = domain.split(".")[0]
    return domain in FREE_MAIL_DOMAINS or domain in extra or first_label in {
        d.split(".")[0] for d in FREE_MAIL_DOMAINS | extra
    }


@transform("corporate_domain")
def corporate_domain(values: Values, ctx: TransformContext) -> str | None:
    """The first website/email domain that is not a free-mail provider."""
    for value in _present(values):
        domain = _domain_of(value)
        if domain and not _is_free_mail(domain, ctx):
            return domain
    return None


@transform("corporate_domain_url")
def corporate_domain_url(values: Values, ctx: TransformContext) -> str | None:
    domain = corporate_domain(values, ctx)
    return f"https://{domain}" if domain else None


# --- email and phone composites --------------------------------------------------------------


def _valid_email(value: str) -> str:
    """The address as Twenty stores it: trimmed and lower-cased (Twenty lower-cases on write and
    refuses surrounding spaces)."""
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidValue(f"email {value.strip()!r} is not valid: {exc}") from None


@transform("email")
def email(values: Values, ctx: TransformContext) -> str | None:
    value = _single(values)
    return _valid_email(value) if value else None


@transform("emails")
def emails(values: Values, ctx: TransformContext) -> dict[str, Any] | None:
    """Twenty EMAILS composite: the first valid address is primary, the rest additional. An
    invalid address is left out (a field issue; `invalid_emails` keeps it as text), so one bad
    value never costs the record its other addresses."""
    addresses: list[str] = []
    for value in _present(values):
        try:
            address = _valid_email(value)
        except InvalidValue as exc:
            ctx.note(f"{exc}; left out of the emails")
            continue
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        return None
    return {"primaryEmail": addresses[0], "additionalEmails": addresses[1:]}


@transform("invalid_emails")
def invalid_emails(values: Values, ctx: TransformContext) -> str | None:
    """The addresses `emails` leaves out because they are not valid, as written in the source
    (one per line), for a TEXT field where a person can see and fix them."""
    bad = []
    for value in _present(values):
        try:
            _valid_email(value)
        except InvalidValue:
            bad.append(value)
    return "\n".join(bad) or None


def _parse_phone(value: str, ctx: TransformContext) -> phonenumbers.PhoneNumber:
    region = str(ctx.option("phone_region") or "").strip().upper() or None
    if region is None and not value.lstrip().startswith("+"):
        raise InvalidValue(f"phone {value!r} has no country code and no `phone_region` setting says which "
                           "country it is in: set it (e.g. --set phone_region=US)")
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise InvalidValue(f"phone {value!r} is not a phone number")
    return number


def _phone(value: str, ctx: TransformContext) -> dict[str, str]:
    """One number as Twenty stores it: the national significant number, the upper-case ISO
    country and the calling code with its "+". A national number is always sent with its
    country (the `phone_region` setting): alone, Twenty refuses it (INVALID_PHONE_NUMBER). The
    extension is not kept here: Twenty drops it (see `phone_extensions`)."""
    number = _parse_phone(value, ctx)
    country = phonenumbers.region_code_for_number(number)
    if not value.lstrip().startswith("+"):
        country = country or str(ctx.option("phone_region")).strip().upper()
    return {
        "number": phonenumbers.national_significant_number(number),
        "countryCode": country if country and re.fullmatch(r"[A-Z]{2}", country) and country != "ZZ" else "",
        "callingCode": f"+{number.country_code}",
    }


def _valid_phones(values: Values, ctx: TransformContext) -> list[tuple[str, dict[str, str]]]:
    """(raw, parsed) of each valid number; an invalid one is left out with a note."""
    parsed = []
    for value in _present(values):
        try:
            parsed.append((value, _phone(value, ctx)))
        except InvalidValue as exc:
            ctx.note(f"{exc}; left out of the phones")
    return parsed


@transform("phones")
def phones(values: Values, ctx: TransformContext) -> dict[str, Any] | None:
    """Twenty PHONES composite; numbers parsed with `phonenumbers`, country code kept."""
    parsed = [phone for _, phone in _valid_phones(values, ctx)]
    if not parsed:
        return None
    first, rest = parsed[0], parsed[1:]
    return {
        "primaryPhoneNumber": first["number"],
        "primaryPhoneCountryCode": first["countryCode"],
        "primaryPhoneCallingCode": first["callingCode"],
        "additionalPhones": rest,
    }


@transform("phone_extensions")
def phone_extensions(values: Values, ctx: TransformContext) -> str | None:
    """The extensions of the numbers `phones` keeps, one line per number that has one
    ("+1 5551234567 ext. 89"), for a TEXT field: Twenty's phones drop extensions silently."""
    lines = []
    for value, phone in _valid_phones(values, TransformContext(ctx.settings, ctx.args)):  # notes: `phones`'
        if extension := _parse_phone(value, ctx).extension:
            lines.append(f"{phone['callingCode']} {phone['number']} ext. {extension}")
    return "\n".join(lines) or None


def _phone_numbers(values: Values) -> tuple[str, ...]:
    """Numbers split into (country calling code, area code, number) groups -> "+<country> <area>
    <number>" (without a country code: "<area> <number>")."""
    if len(values) % 3:
        raise InvalidValue(f"phone_parts reads (country, area, number) groups; got {len(values)} columns")
    numbers = []
    for country, area, number in zip(values[0::3], values[1::3], values[2::3]):
        if number is None or not number.strip():
            continue
        local = " ".join(p.strip() for p in (area, number) if p and p.strip())
        numbers.append(f"+{country.strip().lstrip('+')} {local}" if country and country.strip() else local)
    return tuple(numbers)


@transform("phone_parts")
def phone_parts(values: Values, ctx: TransformContext) -> dict[str, Any] | None:
    """Twenty PHONES composite from numbers split into parts, given as groups of
    (country calling code, area code, number), e.g. Actionstep's phone1Country, phone1Area,
    phone1Number, phone2Country, ...: each group with a number becomes "+<country> <area>
    <number>" (without a country code, read in the `phone_region` region), the first primary."""
    return phones(_phone_numbers(values), ctx)


# --- numbers, booleans, dates ----------------------------------------------------------------


@transform("number")
def number(values: Values, ctx: TransformContext) -> float | None:
    value = _single(values)
    if value is None:
        return None
    cleaned = re.sub(r"[\s,$€£]", "", value)
    try:
        return float(cleaned)
    except ValueError:
        raise InvalidValue(f"{value!r} is not a number") from None


@transform("currency")
def currency(values: Values, ctx: TransformContext) -> Any:
    """Twenty CURRENCY composite: the amount in micros (x 1,000,000, exact) and the currency
    code of the `currency` arg or source setting (ISO 4217, e.g. AUD). With `part:
    amountMicros` or `part: currencyCode` only that subfield, for a mapping that stages the
    composite as dotted columns (`amount.amountMicros`, `amount.currencyCode`); both parts
    come from the same checks, so an invalid amount blanks both."""
    part = ctx.args.get("part")
    if part not in (None, "amountMicros", "currencyCode"):
        raise InvalidValue(f"currency `part` must be amountMicros or currencyCode, not {part!r}")
    value = _single(values)
    if value is None:
        return None
    code = ctx.option("currency")
    if not code or not re.fullmatch(r"[A-Z]{3}", str(code)):
        raise InvalidValue(f"no currency code: set the `currency` setting to e.g. AUD (got {code!r})")
    try:
        amount = Decimal(re.sub(r"[\s,$€£]", "", value))
    except InvalidOperation:
        raise InvalidValue(f"{value!r} is not an amount") from None
    if not amount.is_finite():
        raise InvalidValue(f"{value!r} is not an amount")
    composite = {"amountMicros": int(amount * 1_000_000), "currencyCode": str(code)}
    return composite[part] if part else composite


TRUE_WORDS = {"yes", "y", "true", "t", "1", "x"}
FALSE_WORDS = {"no", "n", "false", "f", "0"}


@transform("boolean")
def boolean(values: Values, ctx: TransformContext) -> bool | None:
    value = _single(values)
    if value is None:
        return None
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise InvalidValue(f"{value!r} is not a yes/no value")


US_DATETIME_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y")


@transform("local_datetime")
def local_datetime(values: Values, ctx: TransformContext) -> str | None:
    """A US-style local date-time ("2/15/2014 1:15:05 PM") as ISO-8601 UTC for a Twenty
    DATE_TIME field. The zone is the source setting named by the `zone_setting` arg
    (default: the `timezone` setting)."""
    value = _single(values)
    if value is None:
        return None
    zone = ZoneInfo(ctx.settings.get(ctx.args.get("zone_setting", "timezone"), "UTC"))
    for fmt in US_DATETIME_FORMATS:
        try:
            local = datetime.strptime(value, fmt).replace(tzinfo=zone)
        except ValueError:
            continue
        return local.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    raise InvalidValue(f"{value!r} is not a date-time like 2/15/2014 1:15:05 PM")


@transform("iso_datetime")
def iso_datetime(values: Values, ctx: TransformContext) -> str | None:
    """An ISO-8601 date-time ("2022-05-03T00:09:00+12:00", "...Z", "2022-05-03 00:09:00") or
    date ("2019-08-15") as UTC for a Twenty DATE_TIME field. A value without an offset, or a
    bare date (midnight), is read in the zone of the setting named by `zone_setting`
    (default: `timezone`; UTC if unset)."""
    value = _single(values)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidValue(f"{value!r} is not an ISO-8601 date-time like 2022-05-03T00:09:00+12:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(ctx.settings.get(ctx.args.get("zone_setting", "timezone")) or "UTC"))
    return moment.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@transform("iso_date")
def iso_date(values: Values, ctx: TransformContext) -> str | None:
    """An ISO-8601 date ("2019-08-15"; the date part of a date-time is kept as written) for a
    Twenty DATE field."""
    value = _single(values)
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip()[:10]).isoformat()
    except ValueError:
        raise InvalidValue(f"{value!r} is not an ISO-8601 date like 2019-08-15") from None


@transform("us_date")
def us_date(values: Values, ctx: TransformContext) -> str | None:
    """MM/DD/YYYY as an ISO date for a Twenty DATE field."""
    value = _single(values)
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%m/%d/%Y").date().isoformat()
    except ValueError:
        raise InvalidValue(f"{value!r} is not a date like 12/31/2014") from None


@transform("birthday")
def birthday(values: Values, ctx: TransformContext) -> str | None:
    """MM/DD/YYYY -> YYYY-MM-DD; MM/DD (no year) -> --MM-DD (ISO 8601 for a date without year)."""
    value = _single(values)
    if value is None:
        return None
    parts = value.split("/")
    try:
        if len(parts) == 3:
            return date(int(parts[2]), int(parts[0]), int(parts[1])).isoformat()
        if len(parts) == 2:
            date(2000, int(parts[0]), int(parts[1]))  # validates month/day (2000 has Feb 29)
            return f"--{int(parts[0]):02d}-{int(parts[1]):02d}"
    except ValueError:
        pass
    raise InvalidValue(f"{value!r} is not a birthday like 12/31/1980 or 12/31")


# --- select options --------------------------------------------------------------------------


def option_value(label: str) -> str:
    """Twenty select option values must be UPPER_SNAKE_CASE ASCII."""
    words = re.findall(r"[A-Z0-9]+", _fold(label).upper())
    value = "_".join(words) or "BLANK"
    return value if not value[0].isdigit() else f"V_{value}"


@transform("select")
def select(values: Values, ctx: TransformContext) -> str | None:
    value = _single(values)
    return option_value(value) if value else None


@transform("value_map")
def value_map(values: Values, ctx: TransformContext) -> Any:
    """A source value replaced by the value the mapping declares for it: `args: {map: {Active:
    PROPOSAL, ...}, default: NEW}`. Exact match first, then ignoring case. A value the map does
    not name takes `default`; without a default it is invalid (the reason lists the known values)."""
    value = _single(values)
    if value is None:
        return None
    table = ctx.args.get("map")
    if not isinstance(table, dict) or not table:
        raise InvalidValue("value_map needs `args: {map: {source value: target value, ...}}`")
    if value in table:
        return table[value]
    folded = {str(k).casefold(): v for k, v in table.items()}
    if value.casefold() in folded:
        return folded[value.casefold()]
    if "default" in ctx.args:
        return ctx.args["default"]
    raise InvalidValue(f"{value!r} is not in the value map (known: {', '.join(map(str, table))})")


@transform("first_item")
def first_item(values: Values, ctx: TransformContext) -> str | None:
    """The first item of a comma-separated list (e.g. a link holding several ids)."""
    value = _single(values)
    if value is None:
        return None
    return next((item.strip() for item in value.split(",") if item.strip()), None)


@transform("tags")
def tags(values: Values, ctx: TransformContext) -> list[str] | None:
    """Comma-separated tags -> MULTI_SELECT option values, duplicates ("vip", "VIP") merged."""
    found: list[str] = []
    for value in _present(values):
        for tag in value.split(","):
            if tag.strip() and option_value(tag) not in found:
                found.append(option_value(tag))
    return found or None


# --- notes -----------------------------------------------------------------------------------

SYSTEM_PREFIX = re.compile(r"^\s*(\[\[(System|Icon:[A-Za-z]+)\]\]\s*)+")


@transform("note_body")
def note_body(values: Values, ctx: TransformContext) -> str | None:
    """Note text as markdown, with AllClients' [[System]] / [[Icon:..]] prefixes removed."""
    value = next((v for v in values if v and v.strip()), None)
    return SYSTEM_PREFIX.sub("", value).strip() or None if value else None


@transform("note_title")
def note_title(values: Values, ctx: TransformContext) -> str:
    """The first line of the note, cut at 80 characters; 'Note' for an empty note."""
    body = note_body(values, ctx) or ""
    first_line = body.splitlines()[0].strip() if body else ""
    limit = int(ctx.option("title_length", 80))
    return (first_line[: limit - 1] + "…") if len(first_line) > limit else (first_line or "Note")


# --- files (documents) -----------------------------------------------------------------------


def human_size(size: int) -> str:
    """Bytes as people read them, in steps of 1024 as Twenty counts its limit: 25.0 MB, 137.4 KB."""
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    for unit in ("KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            break
        value /= 1024
    return f"{value:.1f} {unit}"


@transform("file_name")
def file_name(values: Values, ctx: TransformContext) -> str | None:
    """(name, extension) -> "Contract of sale.pdf"; a name already ending in the extension
    keeps it once; no name -> None."""
    name, extension = (list(values) + [None, None])[:2]
    name = (name or "").strip()
    extension = (extension or "").strip().lstrip(".")
    if not name:
        return None
    return name if not extension or name.lower().endswith(f".{extension.lower()}") else f"{name}.{extension}"


@transform("document_body")
def document_body(values: Values, ctx: TransformContext) -> str:
    """(tags, name, extension, size in bytes, summary) -> markdown: a header listing the tags
    and the file (name and size), then the summary if there is one."""
    tags_text, name, extension, size, summary = (list(values) + [None] * 5)[:5]
    tags = [t.strip() for t in (tags_text or "").split(",") if t.strip()]
    file = file_name((name, extension), ctx) or "(no name)"
    size_text = f" ({human_size(int(size))})" if size and size.strip().isdigit() else ""
    header = f"- **Tags:** {', '.join(tags) if tags else 'none'}\n- **File:** {file}{size_text}"
    return f"{header}\n\n{summary.strip()}" if summary and summary.strip() else header


def stable_hash(parts: Values) -> str:
    """A short content hash used as the key of records that have no id of their own."""
    joined = "\x1f".join(p or "" for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]
