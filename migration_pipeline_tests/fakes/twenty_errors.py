"""Error bodies of the fake Twenty server, shaped like the recorded 2.21 responses."""

from __future__ import annotations

import uuid
from typing import Any


class ApiError(Exception):
    """An HTTP error answer: raised anywhere, rendered as JSON by the app."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


def bad_request(message: str) -> ApiError:
    return ApiError(400, {"statusCode": 400, "error": "BadRequestException", "messages": [message]})


def not_found(message: str = "Record not found") -> ApiError:
    return ApiError(404, {"statusCode": 404, "error": "NotFoundException", "messages": [message]})


def duplicate_entry() -> ApiError:
    return bad_request("A duplicate entry was detected")


def class_validator_error(messages: list[str]) -> ApiError:
    """NestJS ValidationPipe body (note: `message` list, `error` "Bad Request")."""
    return ApiError(400, {"message": messages, "error": "Bad Request", "statusCode": 400})


def metadata_validation_error(
    *, code: str, message: str, name: str, object_universal_id: str, value: Any = None,
    metadata_name: str = "fieldMetadata", action: str = "create",
) -> ApiError:
    """The METADATA_VALIDATION_ERROR body recorded for invalid field creations."""
    entity_id = str(uuid.uuid4())
    error: dict[str, Any] = {"code": code, "message": message, "userFriendlyMessage": message}
    if value is not None:
        error["value"] = value
    view_field_errors = [
        {
            "status": "fail",
            "errors": [{"code": "INVALID_VIEW_DATA", "message": "Field metadata not found",
                        "userFriendlyMessage": "Field metadata not found"}],
            "flatEntityMinimalInformation": {
                "universalIdentifier": str(uuid.uuid4()),
                "viewUniversalIdentifier": str(uuid.uuid4()),
                "fieldMetadataUniversalIdentifier": entity_id,
            },
            "metadataName": "viewField",
            "type": "create",
        }
        for _ in range(2)
    ] if metadata_name == "fieldMetadata" and action == "create" else []
    errors: dict[str, Any] = {
        metadata_name: [{
            "status": "fail",
            "errors": [error],
            "flatEntityMinimalInformation": {
                "universalIdentifier": entity_id,
                "name": name,
                "objectMetadataUniversalIdentifier": object_universal_id,
            },
            "metadataName": metadata_name,
            "type": action,
        }],
    }
    summary: dict[str, Any] = {"totalErrors": 1 + len(view_field_errors), metadata_name: 1}
    if view_field_errors:
        errors["viewField"] = view_field_errors
        summary["viewField"] = len(view_field_errors)
    entity = "fields" if metadata_name == "fieldMetadata" else "objects"
    verb = {"create": "creating", "update": "updating", "delete": "deleting"}[action]
    return ApiError(400, {
        "statusCode": 400,
        "error": "METADATA_VALIDATION_ERROR",
        "message": f"Multiple validation errors occurred while {verb} {entity}",
        "errors": errors,
        "summary": summary,
        "userFriendlyMessage": "Many validation errors",
    })
