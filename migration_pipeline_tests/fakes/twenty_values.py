"""Validation and normalisation of record values sent to the fake Twenty server.

Error messages copy `examples.md` section 6 where recorded; the others follow the same pattern.
Phones, emails, nulls and client-supplied timestamps behave as `examples-2.md` sections 6 and 11
recorded them on a real Twenty 2.21 (phones parsed by `phonenumbers` where Twenty uses
libphonenumber-js; emails checked with the pattern of Twenty's zod `unicodeEmail`).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from migration_pipeline_tests.fakes.twenty_errors import ApiError, bad_request
from migration_pipeline_tests.fakes.twenty_schema import COMPOSITES, FieldMeta, empty_value

FileLookup = Callable[[str], dict[str, Any] | None]
ACTOR_SOURCES = ("EMAIL", "CALENDAR", "WORKFLOW", "AGENT", "API", "IMPORT", "MANUAL", "SYSTEM", "WEBHOOK")


def js_repr(value: Any) -> str:
    """Render a value the way Twenty's messages do: strings quoted, numbers bare."""
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


def is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


def parse_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def format_datetime(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def normalise_value(
    object_name: str, field: FieldMeta, value: Any, current: Any, file_lookup: FileLookup
) -> Any:
    """The stored form of `value` for `field`, or an ApiError(400) naming the field."""
    if value is None and field.type in COMPOSITES and current is not None:
        return current  # Twenty ignores a composite sent as null (examples-2 section 6 probes)
    if value is None:
        return _null_value(field)
    if field.type == "RELATION":
        if not is_uuid(value):
            raise bad_request(f"Invalid UUID value {js_repr(value)} for field \"{field.column}\"")
        return value
    if field.type in COMPOSITES:
        return _normalise_composite(object_name, field, value, current)
    return _SCALAR_NORMALISERS[field.type](field, value, file_lookup)


def _null_value(field: FieldMeta) -> Any:
    if field.is_nullable:
        return empty_value(field) if field.type in COMPOSITES or field.type == "TEXT" else None
    if field.default_value is not None:
        return empty_value(field)
    raise bad_request(f"Field {field.name} is not nullable and has no default value.")


def _text(field: FieldMeta, value: Any, _: FileLookup) -> str:
    if not isinstance(value, str):
        raise bad_request(f"Invalid string value {js_repr(value)} for text field \"{field.name}\"")
    return value


def _number(field: FieldMeta, value: Any, _: FileLookup) -> int | float:
    if not is_number(value):
        # Assumption: NUMBER fields reject strings (the recorded message is for `position`).
        raise bad_request(f"Invalid number value {js_repr(value)} for field \"{field.name}\"")
    return value


def _position(field: FieldMeta, value: Any, _: FileLookup) -> int | float:
    if not is_number(value):
        raise bad_request(f"Invalid position value {js_repr(value)} for field \"{field.name}\"")
    return value


def _boolean(field: FieldMeta, value: Any, _: FileLookup) -> bool:
    if not isinstance(value, bool):
        raise bad_request(f"Invalid boolean value {js_repr(value)} for field \"{field.name}\"")
    return value


def _date_time(field: FieldMeta, value: Any, _: FileLookup) -> str:
    """Stored as given, in UTC: a date alone is midnight UTC, an offset is converted."""
    moment = parse_datetime(value)
    if moment is None:
        raise bad_request(f"Invalid value {js_repr(value)} for date-time field \"{field.name}\". "
                          "Expected format: 'YYYY-MM-DDTHH:mm:ssZ'")
    return format_datetime(moment)


def _date(field: FieldMeta, value: Any, _: FileLookup) -> str:
    moment = parse_datetime(value)
    if moment is None:
        raise bad_request(f"Invalid date value {js_repr(value)} for field \"{field.name}\"")
    return value[:10] if re.match(r"^\d{4}-\d{2}-\d{2}", value) else moment.date().isoformat()


def _select(field: FieldMeta, value: Any, _: FileLookup) -> str:
    valid = field.option_values
    if value not in valid:
        raise bad_request(
            f"Invalid value \"{value}\" for field \"{field.name}\". Valid values are: {', '.join(valid)}"
        )
    return value


def _multi_select(field: FieldMeta, value: Any, file_lookup: FileLookup) -> list[str]:
    if not isinstance(value, list):
        raise bad_request(f"Invalid array value {js_repr(value)} for field \"{field.name}\"")
    return [_select(field, item, file_lookup) for item in value]


def _uuid(field: FieldMeta, value: Any, _: FileLookup) -> str:
    if not is_uuid(value):
        raise bad_request(f"Invalid UUID value {js_repr(value)} for field \"{field.name}\"")
    return value


def _files(field: FieldMeta, value: Any, file_lookup: FileLookup) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise bad_request(f"Invalid array value {js_repr(value)} for field \"{field.name}\"")
    items = []
    for item in value:
        if not isinstance(item, dict) or not is_uuid(item.get("fileId")) or not isinstance(item.get("label"), str):
            raise bad_request(f"Invalid file item {js_repr(item)} for field \"{field.name}\": "
                              "expected {\"fileId\": <uuid>, \"label\": <string>}")
        stored = file_lookup(item["fileId"])
        if stored is None:
            # Recorded (examples-2.md section 8): a file id never uploaded is refused.
            raise bad_request(f"File not found: {item['fileId']}")
        items.append({"label": item["label"], "fileId": item["fileId"],
                      "extension": stored["extension"], "url": stored["url"]})
    return items


_SCALAR_NORMALISERS: dict[str, Callable[[FieldMeta, Any, FileLookup], Any]] = {
    "TEXT": _text,
    "NUMBER": _number,
    "POSITION": _position,
    "BOOLEAN": _boolean,
    "DATE_TIME": _date_time,
    "DATE": _date,
    "SELECT": _select,
    "MULTI_SELECT": _multi_select,
    "UUID": _uuid,
    "FILES": _files,
    "RAW_JSON": lambda _field, value, _files: json.loads(json.dumps(value)),  # stored as sent
}


def _normalise_composite(object_name: str, field: FieldMeta, value: Any, current: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(f"Invalid object value {js_repr(value)} for field \"{field.name}\"")
    spec = COMPOSITES[field.type]
    writable = ("source", "context") if field.type == "ACTOR" else tuple(spec)
    merged = dict(current) if isinstance(current, dict) else empty_value(field)
    for subfield, sub_value in value.items():
        if subfield not in writable:
            # Assumption: unknown subfields are reported like unknown fields.
            raise bad_request(f"Object {object_name} doesn't have any \"{field.name}.{subfield}\" field.")
        kind, empty = spec[subfield]
        merged[subfield] = _normalise_subfield(kind, f"{field.name}.{subfield}", sub_value, empty)
    if field.type == "ACTOR" and merged.get("source") not in ACTOR_SOURCES:
        raise bad_request(f"Invalid value \"{merged.get('source')}\" for field \"{field.name}.source\". "
                          f"Valid values are: {', '.join(ACTOR_SOURCES)}")
    if field.type == "RICH_TEXT":
        _derive_missing_rich_text(merged, sent=set(value))
    if field.type == "EMAILS":
        _check_emails(field.name, merged)
    if field.type == "PHONES":
        _normalise_phones(merged, sent=set(value))
    return merged


def _normalise_subfield(kind: str, path: str, value: Any, empty: Any = None) -> Any:
    if value is None and kind in ("text", "string_list", "object_list"):
        return empty  # a null subfield is stored as its empty value ("" / [])
    if value is None or kind == "json":
        return value
    if kind == "text":
        if not isinstance(value, str):
            raise bad_request(f"Invalid string value {js_repr(value)} for text field \"{path}\"")
        return value
    if kind == "number":
        return _js_number(path, value)
    if not isinstance(value, list):
        raise bad_request(f"Invalid array value {js_repr(value)} for field \"{path}\"")
    expected = str if kind == "string_list" else dict
    if not all(isinstance(item, expected) for item in value):
        raise bad_request(f"Invalid array value {js_repr(value)} for field \"{path}\"")
    return value


# Twenty's emailSchema: zod `z.email({pattern: z.regexes.unicodeEmail}).max(255)`.
_EMAIL = re.compile(r"^[^\s@\"]{1,64}@[^\s@]{1,255}$")


def _check_emails(name: str, emails: dict[str, Any]) -> None:
    """Addresses are lower-cased on write; surrounding spaces or an invalid address -> 400 (not
    trimmed). A copy of the primary among the additional ones is kept."""
    primary = emails.get("primaryEmail") or ""
    for path, address in [("primaryEmail", primary)] + [("additionalEmails", a) for a in emails.get("additionalEmails") or []]:
        if address and (len(address) > 255 or not _EMAIL.match(address)):
            raise bad_request(f"Invalid string value {js_repr(address)} for email field \"{name}.{path}\"")
    emails["primaryEmail"] = primary.lower()
    emails["additionalEmails"] = [a.lower() for a in emails.get("additionalEmails") or []]


def _phone_error(message: str, code: str) -> ApiError:
    error = bad_request(message)
    error.body["error"] = "Error"
    error.body["code"] = code
    return error


def _normalise_phones(phones: dict[str, Any], sent: set[str]) -> None:
    """Each number (primary and additional) parsed like Twenty's transformPhonesValue: stored
    as its national number, extension dropped; country and calling code inferred from a "+"
    number, else required (a national number alone is INVALID_PHONE_NUMBER); a lower-case
    country, or codes that contradict each other or the number, are refused. An additional
    phone keeps only the keys number/countryCode/callingCode (others vanish, as on the server)."""
    if sent & {"primaryPhoneNumber", "primaryPhoneCountryCode", "primaryPhoneCallingCode"}:
        number, country, calling = _phone(phones.get("primaryPhoneNumber"), phones.get("primaryPhoneCountryCode"),
                                          phones.get("primaryPhoneCallingCode"))
        phones.update(primaryPhoneNumber=number, primaryPhoneCountryCode=country, primaryPhoneCallingCode=calling)
    if "additionalPhones" in sent:
        additional = []
        for item in phones.get("additionalPhones") or []:
            number, country, calling = _phone(item.get("number"), item.get("countryCode"), item.get("callingCode"))
            additional.append({k: v for k, v in (("number", number), ("callingCode", calling), ("countryCode", country))
                               if k in item or v})
        phones["additionalPhones"] = additional


def _phone(number: str | None, country: str | None, calling: str | None) -> tuple[str, str, str]:
    if country and country not in phonenumbers.SUPPORTED_REGIONS:
        raise _phone_error(f"Invalid country code {country}", "INVALID_PHONE_COUNTRY_CODE")
    if calling:
        digits = calling.replace("+", "")
        regions = phonenumbers.region_codes_for_country_code(int(digits)) if digits.isdigit() else ()
        if not regions or regions == ("001",):
            raise _phone_error(f"Invalid calling code {calling}", "INVALID_PHONE_CALLING_CODE")
        if country and country not in regions:
            raise _phone_error("Provided country code and calling code are conflicting",
                               "CONFLICTING_PHONE_CALLING_CODE_AND_COUNTRY_CODE")
    if not number:
        return "", country or "", calling or ""
    default = country or (phonenumbers.region_code_for_country_code(int(calling.replace("+", ""))) if calling else None)
    try:
        parsed = phonenumbers.parse(number, default if number.lstrip()[:1] != "+" else None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_possible_number(parsed):
        raise _phone_error(f"Provided phone number is invalid {number}", "INVALID_PHONE_NUMBER")
    inferred = phonenumbers.region_code_for_number(parsed) if number.lstrip()[:1] == "+" else None
    if inferred and country and inferred != country:
        raise _phone_error("Provided and inferred country code are conflicting", "CONFLICTING_PHONE_COUNTRY_CODE")
    if calling and calling.replace("+", "") != str(parsed.country_code):
        raise _phone_error("Provided and inferred calling code are conflicting", "CONFLICTING_PHONE_CALLING_CODE")
    return (phonenumbers.national_significant_number(parsed), country or inferred or "",
            calling or f"+{parsed.country_code}")


def _js_number(path: str, value: Any) -> int | float:
    """JS `Number(value)` semantics: numeric strings convert, anything else is NaN."""
    if is_number(value):
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None and number == number:
            return int(number) if number.is_integer() and "." not in value else number
    raise bad_request(f"Invalid number value NaN for field \"{path}\"")


def _derive_missing_rich_text(body: dict[str, Any], sent: set[str]) -> None:
    if "markdown" in sent and "blocknote" not in sent:
        body["blocknote"] = markdown_to_blocknote(body["markdown"]) if body["markdown"] is not None else None
    elif "blocknote" in sent and "markdown" not in sent:
        body["markdown"] = blocknote_to_markdown(body["blocknote"]) if body["blocknote"] is not None else None


_HEADING = re.compile(r"^(#{1,3})\s+(.*)$")
_BLOCK_PROPS = {"backgroundColor": "default", "textColor": "default", "textAlignment": "left"}


def markdown_to_blocknote(markdown: str) -> str:
    """A simplified BlockNote document: one heading or paragraph block per markdown block."""
    blocks = []
    for chunk in (c for c in re.split(r"\n\s*\n", markdown.strip()) if c):
        heading = _HEADING.match(chunk)
        text = heading.group(2) if heading else chunk
        block: dict[str, Any] = {"id": str(uuid.uuid4()), "type": "heading" if heading else "paragraph"}
        block["props"] = {**_BLOCK_PROPS, "level": len(heading.group(1)), "isToggleable": False} if heading \
            else dict(_BLOCK_PROPS)
        block["content"] = [{"type": "text", "text": text, "styles": {}}]
        block["children"] = []
        blocks.append(block)
    return json.dumps(blocks, separators=(",", ":"))


def blocknote_to_markdown(blocknote: str) -> str | None:
    try:
        blocks = json.loads(blocknote)
    except (TypeError, ValueError):
        return None
    parts = []
    for block in blocks if isinstance(blocks, list) else []:
        text = "".join(item.get("text", "") for item in block.get("content") or [] if isinstance(item, dict))
        level = (block.get("props") or {}).get("level", 1)
        parts.append(f"{'#' * level} {text}" if block.get("type") == "heading" else text)
    return "\n\n".join(parts)
