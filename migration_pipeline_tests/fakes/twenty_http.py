"""Request handling of the fake Twenty server: REST records, metadata REST and file uploads.

`TwentyRoutes.dispatch` is synchronous and runs under the FakeTwenty lock; auth, throttling and
failure injection happen before it, in `FakeTwenty`.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import PurePosixPath
from typing import Any

from starlette.responses import JSONResponse, Response

from migration_pipeline_tests.fakes import twenty_metadata as metadata
from migration_pipeline_tests.fakes.twenty_errors import ApiError, bad_request, class_validator_error, not_found
from migration_pipeline_tests.fakes.twenty_filters import decode_cursor, encode_cursor, parse_order_by
from migration_pipeline_tests.fakes.twenty_schema import ObjectMeta, capitalize_first, now_iso
from migration_pipeline_tests.fakes.twenty_store import Row, Workspace
from migration_pipeline_tests.fakes.twenty_values import is_uuid

MAX_RECORDS = 200  # QUERY_MAX_RECORDS
DEFAULT_LIMIT = 60  # QUERY_DEFAULT_LIMIT_RECORDS
_UNIMPLEMENTED_ACTIONS = ("duplicates", "merge", "groupBy")
_METADATA_ITEM_OPERATIONS: dict[str, dict[str, Callable[..., Any]]] = {
    "objects": {"GET": metadata.get_object, "PATCH": metadata.update_object, "DELETE": metadata.delete_object},
    "fields": {"GET": metadata.get_field, "PATCH": metadata.update_field, "DELETE": metadata.delete_field},
}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    body: bytes
    content_type: str
    base_url: str


def loud_not_found(call: Call, hint: str = "") -> ApiError:
    message = f"FakeTwenty has no route for {call.method} {call.path}. {hint}".strip()
    return ApiError(404, {"statusCode": 404, "error": "NotFound", "messages": [message]})


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def _page_info(start: str | None, end: str | None, has_next: bool, has_previous: bool) -> dict[str, Any]:
    return {"startCursor": start, "endCursor": end, "hasNextPage": has_next, "hasPreviousPage": has_previous}


def parse_limit(raw: str | None) -> int:
    if not raw:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"\d+", raw):
        raise bad_request(f"limit '{raw}' is invalid. Should be an integer")
    return min(int(raw), MAX_RECORDS)


def _graphql_error(message: str, code: str, status: int = 200) -> JSONResponse:
    return _json({"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}, status)


# Twenty 2.21 sniffs an upload's magic bytes (extract-file-info-or-throw.utils.ts): content
# detected as any type is accepted (as that type); otherwise a file whose extension names a type
# the sniffer can detect is refused. Only the types our sources send and a few common ones are
# modelled: pdf, png, jpg/jpeg, gif, zip. Any other extension is accepted as Twenty does for
# undetectable ones (txt, csv; docx was accepted with text content on 2.21).
MAGIC_BYTES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "pdf": ("application/pdf", (b"%PDF-",)),
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "gif": ("image/gif", (b"GIF87a", b"GIF89a")),
    "zip": ("application/zip", (b"PK\x03\x04",)),
}


def content_mismatch(filename: str, content: bytes) -> str | None:
    """Twenty's refusal of content that does not match its extension, or None."""
    if any(content.startswith(magic) for _, magics in MAGIC_BYTES.values() for magic in magics):
        return None
    extension = PurePosixPath(filename).suffix.lstrip(".").lower()
    if extension not in MAGIC_BYTES:
        return None
    return (f"File content does not match its extension. The file has extension '{extension}' (expected mime "
            f"type: {MAGIC_BYTES[extension][0]}), but the file content could not be detected as this type. The "
            "file may be corrupted, have the wrong extension, or be a security risk.")


class TwentyRoutes:
    def __init__(self, workspace: Workspace, max_upload_bytes: int | None) -> None:
        self.ws = workspace
        self.max_upload_bytes = max_upload_bytes

    def dispatch(self, call: Call) -> Response:
        segments = [segment for segment in call.path.split("/") if segment]
        if call.method == "POST" and segments == ["metadata"]:
            return self._graphql_metadata(call)
        if call.method == "GET" and segments[:2] == ["file", "files-field"] and len(segments) == 3:
            return self._download(call, segments[2])
        if segments[:1] != ["rest"]:
            raise loud_not_found(call, "It serves /rest/<object>, /rest/metadata/... and POST /metadata uploads.")
        if segments[1:2] == ["metadata"]:
            return self._metadata(call, segments[2:])
        return self._records(call, segments[1:])

    # ---- record routes -------------------------------------------------------------------

    def _records(self, call: Call, segments: list[str]) -> Response:
        if not segments or len(segments) > 2:
            # 2.21 parses at most two segments, which is why PATCH /rest/restore/{plural}/{id} fails.
            raise bad_request(f"Query path '{call.path}' invalid. Valid examples: /rest/companies/id "
                              "or /rest/companies or /rest/batch/companies")
        first, second = segments[0], segments[1] if len(segments) == 2 else None
        if first == "batch" and second is not None:
            return self._only(call, "POST", lambda: self._batch_create(call, self._object(second)))
        if first == "restore" and second is not None:
            return self._only(call, "PATCH", lambda: self._restore_many(call, self._object(second)))
        if second in _UNIMPLEMENTED_ACTIONS:
            raise loud_not_found(call, f"/{second} is a real Twenty route that FakeTwenty does not implement.")
        obj = self._object(first)
        if second is None:
            handlers = {"GET": self._list, "POST": self._create_one, "PATCH": self._update_many,
                        "DELETE": self._delete_many}
            return self._only(call, tuple(handlers), lambda: handlers[call.method](call, obj))
        if not is_uuid(second):
            raise bad_request(f"'{second}' is not a valid UUID")
        record_handlers = {"GET": self._get_one, "PATCH": self._update_one, "DELETE": self._delete_one}
        return self._only(call, tuple(record_handlers), lambda: record_handlers[call.method](call, obj, second))

    @staticmethod
    def _only(call: Call, methods: str | tuple[str, ...], handler: Callable[[], Response]) -> Response:
        if call.method not in ((methods,) if isinstance(methods, str) else methods):
            raise loud_not_found(call)
        return handler()

    def _object(self, plural: str) -> ObjectMeta:
        obj = self.ws.object_by_plural(plural)
        if obj is None:
            raise bad_request(f"object '{plural}' not found. eg: companies")
        return obj

    def _rendered(self, obj: ObjectMeta, rows: list[Row]) -> list[Row]:
        return [self.ws.render(obj, row) for row in rows]

    def _list(self, call: Call, obj: ObjectMeta) -> Response:
        limit = parse_limit(call.query.get("limit"))
        terms = parse_order_by(obj, call.query.get("order_by"))
        after, before = call.query.get("starting_after"), call.query.get("ending_before")
        if after and before:
            # Assumption: the real parser refuses both cursors together.
            raise bad_request("'starting_after' and 'ending_before' cannot be used together")
        view = self.ws.sorted_view(obj, call.query.get("filter"), terms)
        if before:
            end = view.index_before(decode_cursor(terms, before))
            start = max(end - limit, 0)
        else:
            start = view.index_after(decode_cursor(terms, after)) if after else 0
            end = start + limit
        page = view.rows[start:end]
        return _json({
            "data": {obj.name_plural: self._rendered(obj, page)},
            "totalCount": len(view.rows),
            "pageInfo": _page_info(
                encode_cursor(terms, page[0]) if page else None,
                encode_cursor(terms, page[-1]) if page else None,
                has_next=not before and end < len(view.rows),
                has_previous=bool(before) and start > 0,
            ),
        })

    def _get_one(self, call: Call, obj: ObjectMeta, record_id: str) -> Response:
        return _json({"data": {obj.name_singular: self.ws.render(obj, self.ws.get_active(obj, record_id))}})

    def _create_one(self, call: Call, obj: ObjectMeta) -> Response:
        body = self._object_body(call)
        [row] = self.ws.create(obj, [body], upsert=call.query.get("upsert") == "true")
        return _json({"data": {f"create{capitalize_first(obj.name_singular)}": self.ws.render(obj, row)}}, 201)

    def _batch_create(self, call: Call, obj: ObjectMeta) -> Response:
        if not isinstance(call.json, list):
            # Assumption: wording of the real non-array batch error is not recorded.
            raise bad_request("Batch body must be a JSON array of records")
        if len(call.json) > MAX_RECORDS:
            raise bad_request(f"Maximum number of records to upsert is {MAX_RECORDS}.")
        rows = self.ws.create(obj, call.json, upsert=call.query.get("upsert") == "true")
        return _json({"data": {f"create{capitalize_first(obj.name_plural)}": self._rendered(obj, rows)}}, 201)

    def _update_one(self, call: Call, obj: ObjectMeta, record_id: str) -> Response:
        # Unlike GET, PATCH by id reaches a soft-deleted record; `{"deletedAt": null}` restores it.
        [row] = self.ws.update(obj, [self.ws.get_any(obj, record_id)], self._object_body(call))
        return _json({"data": {f"update{capitalize_first(obj.name_singular)}": self.ws.render(obj, row)}})

    def _delete_one(self, call: Call, obj: ObjectMeta, record_id: str) -> Response:
        key = f"delete{capitalize_first(obj.name_singular)}"
        if call.query.get("soft_delete") == "true":  # a soft-deleted record is stamped again
            [row] = self.ws.soft_delete(obj, [self.ws.get_any(obj, record_id)])
            return _json({"data": {key: self.ws.render(obj, row)}})
        if record_id not in self.ws.tables[obj.id]:
            raise not_found()
        self.ws.destroy(obj, [record_id])
        return _json({"data": {key: {"id": record_id}}})

    def _filtered_for_many(self, call: Call, obj: ObjectMeta, verb: str) -> list[Row]:
        """Rows a many-record write hits: soft-deleted ones too, unlike a GET (examples-2.md 2, 3)."""
        if "filter" not in call.query:
            # Assumption for update/restore: the recorded refusal is only for delete/destroy.
            raise bad_request(f"Filters are mandatory for bulk {verb} operations. Please provide at least one "
                              "filter to prevent accidental deletion of all records.")
        return self.ws.select(obj, call.query["filter"], with_deleted=True)

    def _update_many(self, call: Call, obj: ObjectMeta) -> Response:
        body = self._object_body(call)
        rows = self._filtered_for_many(call, obj, "update")
        if len(rows) > MAX_RECORDS:  # the cap counts matched rows
            raise ApiError(400, {"statusCode": 400, "error": "Error",
                                 "messages": [f"Cannot update more than {MAX_RECORDS} records at once"],
                                 "code": "TOO_MANY_RECORDS_TO_UPDATE"})
        rows = self.ws.update(obj, rows, body)
        return _json({"data": {f"update{capitalize_first(obj.name_plural)}": self._rendered(obj, rows)}})

    def _delete_many(self, call: Call, obj: ObjectMeta) -> Response:
        """Destroy by default; soft delete with `soft_delete=true` (which re-stamps soft-deleted rows).
        No cap on the number of rows: the limit is the URL length."""
        key = f"delete{capitalize_first(obj.name_plural)}"
        if call.query.get("soft_delete") == "true":
            rows = self._filtered_for_many(call, obj, "delete")
            return _json({"data": {key: self._rendered(obj, self.ws.soft_delete(obj, rows))}})
        ids = [row["id"] for row in self._filtered_for_many(call, obj, "destroy")]
        self.ws.destroy(obj, ids)
        return _json({"data": {key: [{"id": record_id} for record_id in ids]}})

    def _restore_many(self, call: Call, obj: ObjectMeta) -> Response:
        rows = self.ws.restore(obj, self._filtered_for_many(call, obj, "restore"))
        return _json({"data": {f"restore{capitalize_first(obj.name_plural)}": self._rendered(obj, rows)}})

    @staticmethod
    def _object_body(call: Call) -> dict[str, Any]:
        if not isinstance(call.json, dict):
            # Assumption: wording of the real non-object body error is not recorded.
            raise bad_request("Request body must be a JSON object")
        return call.json

    # ---- metadata REST -------------------------------------------------------------------

    def _metadata(self, call: Call, segments: list[str]) -> Response:
        if len(segments) not in (1, 2) or segments[0] not in ("objects", "fields"):
            raise loud_not_found(call, "FakeTwenty implements /rest/metadata/objects and /rest/metadata/fields.")
        kind = segments[0]
        if len(segments) == 1:
            if call.method == "GET":
                return self._metadata_list(call, kind)
            return self._only(call, "POST", lambda: self._metadata_create(call, kind))
        item_id = segments[1]
        if not is_uuid(item_id):
            raise class_validator_error(["Validation failed (uuid is expected)"])
        operations = _METADATA_ITEM_OPERATIONS[kind]
        if call.method == "PATCH":
            return _json(operations["PATCH"](self.ws, item_id, self._object_body(call)).to_json())
        return self._only(call, ("GET", "DELETE"), lambda: _json(operations[call.method](self.ws, item_id).to_json()))

    def _metadata_items(self, kind: str) -> list[Any]:
        if kind == "objects":
            return list(self.ws.objects.values())
        return [field for obj in self.ws.objects.values() for field in obj.fields.values()]

    def _metadata_list(self, call: Call, kind: str) -> Response:
        items = sorted(self._metadata_items(kind), key=lambda item: item.id)
        limit = parse_limit(call.query.get("limit"))
        after = call.query.get("starting_after")
        if after:
            after_id = self._decode_id_cursor(after)
            items = [item for item in items if item.id > after_id]
        page = items[:limit]
        return _json({
            "data": [item.to_json() for item in page],
            "pageInfo": _page_info(self._id_cursor(page[0].id) if page else None,
                                   self._id_cursor(page[-1].id) if page else None, len(items) > limit, False),
            "totalCount": len(self._metadata_items(kind)),
        })

    @staticmethod
    def _id_cursor(item_id: str) -> str:
        return base64.b64encode(json.dumps({"id": item_id}).encode()).decode()

    @staticmethod
    def _decode_id_cursor(cursor: str) -> str:
        try:
            return json.loads(base64.b64decode(cursor, validate=True))["id"]
        except (ValueError, KeyError, TypeError):
            raise bad_request(f"Invalid cursor '{cursor}'") from None

    def _metadata_create(self, call: Call, kind: str) -> Response:
        body = self._object_body(call)
        created = metadata.create_object(self.ws, body) if kind == "objects" else metadata.create_field(self.ws, body)
        return _json(created.to_json(), 201)

    # ---- files ---------------------------------------------------------------------------

    def _graphql_metadata(self, call: Call) -> Response:
        not_implemented = _graphql_error("FakeTwenty only implements the uploadFilesFieldFile mutation on /metadata",
                                         "NOT_IMPLEMENTED", 400)
        if not call.content_type.startswith("multipart/form-data"):
            return not_implemented
        parts = _multipart_parts(call.content_type, call.body)
        try:
            operations, file_map = json.loads(parts["operations"][1]), json.loads(parts["map"][1])
        except (KeyError, ValueError):
            return _graphql_error("Multipart GraphQL requests need 'operations' and 'map' parts", "BAD_REQUEST", 400)
        query, variables = operations.get("query", ""), operations.get("variables") or {}
        if "uploadFilesFieldFile" not in query:
            return not_implemented
        file_part = next((parts[name] for name in file_map if name in parts), None)
        if file_part is None:
            return _graphql_error("Variable \"$file\" of required type \"Upload!\" was not provided.",
                                  "BAD_USER_INPUT")
        filename, content = file_part
        if self.max_upload_bytes is not None and len(content) > self.max_upload_bytes:
            # Twenty 2.21 sets no file size limit; this stands for a server (or proxy) configured with one.
            # Assumption: graphql-upload's 413 answer for files over maxFileSize.
            return _graphql_error(f"File truncated as it exceeds the {self.max_upload_bytes} byte size limit.",
                                  "PAYLOAD_TOO_LARGE", 413)
        field_id = _argument(query, variables, "fieldMetadataId")
        found = self.ws.find_field(field_id or "")
        if found is None or found[1].type != "FILES":
            return _graphql_error(f"Field metadata {field_id} not found or not a FILES field", "NOT_FOUND")
        if (refusal := content_mismatch(filename or "file", content)) is not None:
            return _graphql_error(refusal, "INTERNAL_SERVER_ERROR")  # Twenty 2.21's answer, HTTP 200
        return _json({"data": {"uploadFilesFieldFile": self._store_file(call, field_id, filename or "file", content)}})

    def _store_file(self, call: Call, field_id: str, filename: str, content: bytes) -> dict[str, Any]:
        file_id, token = str(uuid.uuid4()), secrets.token_urlsafe(16)
        extension = PurePosixPath(filename).suffix
        info = {
            "id": file_id,
            "path": f"files-field/{field_id}/{file_id}{extension}",
            "size": len(content),
            "createdAt": now_iso(),
            "url": f"{call.base_url}/file/files-field/{file_id}?token={token}",
        }
        self.ws.files[file_id] = content
        self.ws.file_info[file_id] = {**info, "extension": extension, "token": token, "name": filename}
        return info

    def _download(self, call: Call, file_id: str) -> Response:
        info = self.ws.file_info.get(file_id)
        if info is None:  # never uploaded, or deleted with its attachment
            raise ApiError(404, {"statusCode": 404, "error": "Error", "messages": ["File not found"],
                                 "code": "FILE_NOT_FOUND"})
        if call.query.get("token") != info["token"]:
            # Assumption: the answer to a wrong token is not recorded.
            raise ApiError(403, {"statusCode": 403, "error": "FORBIDDEN_EXCEPTION",
                                 "messages": ["File not found or token invalid"]})
        return Response(self.ws.files[file_id], media_type="application/octet-stream")


def _multipart_parts(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Form parts by name: (filename, bytes). Parsed with the stdlib email parser (no python-multipart)."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            parts[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return parts


def _argument(query: str, variables: dict[str, Any], name: str) -> str | None:
    """A GraphQL argument given inline (`name: "x"`) or through a variable (`name: $v`)."""
    inline = re.search(rf'{name}\s*:\s*"([^"]*)"', query)
    if inline:
        return inline.group(1)
    variable = re.search(rf"{name}\s*:\s*\$(\w+)", query)
    return variables.get(variable.group(1)) if variable else None
