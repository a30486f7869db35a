"""File uploads and attachments, as recorded on Twenty 2.21 (examples-2.md section 8).

A file goes into `attachment.file` by a GraphQL multipart upload to /metadata (no size limit on
2.21: 11 MB is accepted), then an attachment record names its id. Destroying the attachment
deletes the file. JSON bodies, unlike uploads, stop at 10 MB, with an HTTP 500.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from migration_pipeline_tests.contract.conftest import TwentyUnderTest, created
from migration_pipeline_tests.contract.probing import data_of, messages

UPLOAD = "mutation($file:Upload!,$fid:String!){uploadFilesFieldFile(file:$file,fieldMetadataId:$fid){id path size url}}"
ELEVEN_MB = 11 * 1024 * 1024


def file_field_id(twenty: TwentyUnderTest) -> str:
    objects = twenty.http.get("/rest/metadata/objects", params={"limit": 200}).json()["data"]
    objects = objects if isinstance(objects, list) else objects["objects"]
    attachment = next(o for o in objects if o["nameSingular"] == "attachment")
    return next(f["id"] for f in attachment["fields"] if f["name"] == "file")


def upload(twenty: TwentyUnderTest, name: str, content: bytes) -> dict[str, Any]:
    operations = httpx.Request("POST", "/", json={"query": UPLOAD, "variables": {"file": None,
                                                                                "fid": file_field_id(twenty)}})
    response = twenty.http.post("/metadata", data={"operations": operations.content.decode(),
                                                   "map": '{"0":["variables.file"]}'},
                                files={"0": (name, content, "text/plain")})
    assert response.status_code == 200, response.text
    return response.json()["data"]["uploadFilesFieldFile"]


def attach(twenty: TwentyUnderTest, note_id: str, name: str, file_id: str) -> httpx.Response:
    return twenty.http.post("/rest/attachments", json={
        "name": name, "file": [{"fileId": file_id, "label": name}], "targetNoteId": note_id})


def gone_within(url: str, seconds: float) -> httpx.Response:
    """The answer for `url` once it is no longer 200 (the real server deletes files in a job)."""
    deadline = time.monotonic() + seconds
    while True:
        response = httpx.get(url, timeout=30)
        if response.status_code != 200 or time.monotonic() > deadline:
            return response
        time.sleep(1)


def test_an_11_mb_file_is_uploaded_attached_and_deleted_with_its_attachment(twenty: TwentyUnderTest) -> None:
    note = created(twenty.http.post("/rest/notes", json={"title": f"{twenty.prefix} note"}))
    twenty.track_record("notes", note["id"])
    content = b"x" * ELEVEN_MB

    uploaded = upload(twenty, f"{twenty.prefix}-big.txt", content)
    attachment = created(attach(twenty, note["id"], f"{twenty.prefix}-big.txt", uploaded["id"]))
    twenty.track_record("attachments", attachment["id"])
    [stored] = attachment["file"]
    download = httpx.get(stored["url"], timeout=60)  # signed URL: no Authorization header

    assert uploaded["size"] == ELEVEN_MB
    assert (stored["fileId"], stored["extension"]) == (uploaded["id"], ".txt")
    assert download.status_code == 200 and download.content == content

    assert twenty.http.delete(f"/rest/attachments/{attachment['id']}").status_code == 200
    after = gone_within(stored["url"], seconds=60)
    assert after.status_code == 404 and after.json()["code"] == "FILE_NOT_FOUND"


def test_an_attachment_naming_a_file_never_uploaded_is_refused(twenty: TwentyUnderTest) -> None:
    note = created(twenty.http.post("/rest/notes", json={"title": f"{twenty.prefix} note"}))
    twenty.track_record("notes", note["id"])
    missing = str(uuid.uuid4())

    response = attach(twenty, note["id"], f"{twenty.prefix}-missing.txt", missing)

    assert response.status_code == 400 and messages(response) == [f"File not found: {missing}"]


def test_a_json_body_over_10_mb_is_answered_with_a_500(twenty: TwentyUnderTest) -> None:
    response = twenty.http.post("/rest/companies", json={"name": f"{twenty.prefix} {'x' * ELEVEN_MB}"})

    assert response.status_code == 500 and response.json() == "request entity too large"
    assert data_of(twenty.http.get("/rest/companies", params={"filter": f'name[like]:"{twenty.prefix} %"'})) == []


def refused_upload(twenty: TwentyUnderTest, name: str, content: bytes) -> list[str]:
    operations = httpx.Request("POST", "/", json={"query": UPLOAD, "variables": {"file": None,
                                                                                "fid": file_field_id(twenty)}})
    response = twenty.http.post("/metadata", data={"operations": operations.content.decode(),
                                                   "map": '{"0":["variables.file"]}'},
                                files={"0": (name, content, "application/octet-stream")})
    assert response.status_code == 200 and response.json().get("data") is None, response.text
    return [e["message"] for e in response.json()["errors"]]


def test_content_that_does_not_match_its_extension_is_refused(twenty: TwentyUnderTest) -> None:
    for extension, mime in (("pdf", "application/pdf"), ("png", "image/png")):
        assert refused_upload(twenty, f"{twenty.prefix}-fake.{extension}", b"plain text, not that type") == [
            f"File content does not match its extension. The file has extension '{extension}' (expected mime type: "
            f"{mime}), but the file content could not be detected as this type. The file may be corrupted, have the "
            "wrong extension, or be a security risk."]

    note = created(twenty.http.post("/rest/notes", json={"title": f"{twenty.prefix} note"}))
    twenty.track_record("notes", note["id"])
    uploaded = upload(twenty, f"{twenty.prefix}-real.pdf", b"%PDF-1.7\n%%EOF\n")  # a PDF's magic bytes
    attachment = created(attach(twenty, note["id"], f"{twenty.prefix}-real.pdf", uploaded["id"]))
    twenty.track_record("attachments", attachment["id"])
    assert attachment["file"][0]["extension"] == ".pdf"
