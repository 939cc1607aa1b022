"""The exception hierarchy of annota; the runtime maps each class to one HTTP status.

AnnotaError
├── ValidationError      400  bad input; ``detail`` maps field names to messages
│   ├── MediaError            a media file that cannot be used (corrupt, unsupported, unsafe archive)
│   └── FormatError           a dataset file that does not follow its format (names file, line, annotation)
├── NotAuthenticated     401  missing or wrong credentials
├── PermissionDenied     403  authenticated, but the policy says no
├── NotFound             404  no such object (or not visible to the caller)
├── MethodNotAllowed     405
├── Conflict             409  concurrent change, duplicate, wrong state
├── Gone                 410  an endpoint or result that no longer exists
├── PayloadTooLarge      413
├── TooManyRequests      429  throttled; ``retry_after`` seconds go out as ``Retry-After``
├── ServiceUnavailable   503  a backing service (database, Redis, OPA) is down
├── ConfigError               a setting or plugin configuration is invalid (start-up)
└── StorageError         500  a storage backend failed to store or read an object
    ├── InvalidObjectKey     400  (also a ValidationError) a key or prefix a backend cannot accept
    ├── ObjectNotFound       404  (also a NotFound) no object under that key
    └── RangeNotSatisfiable  416  a byte range outside the object
"""

from __future__ import annotations

from typing import Any


class AnnotaError(Exception):
    """Base class: ``detail`` is what the API client sees."""

    status_code = 500

    def __init__(self, detail: Any = None) -> None:
        self.detail = detail if detail is not None else self.default_detail()
        super().__init__(self.detail if isinstance(self.detail, str) else repr(self.detail))

    @classmethod
    def default_detail(cls) -> str:
        return "A server error occurred."


class ValidationError(AnnotaError):
    """Bad input. ``detail`` is a message or a ``{field: [messages]}`` mapping, DRF style."""

    status_code = 400

    @classmethod
    def for_field(cls, field: str, message: str) -> ValidationError:
        return cls({field: [message]})


class MediaError(ValidationError):
    """A media file that cannot be used; the message names the file (and the archive member)."""


class FormatError(ValidationError):
    """A dataset or annotation file that does not follow its format.

    The message is prefixed with where the problem is: the file, then a line (and column) for text
    formats or a JSON pointer, then the item and the annotation, e.g.
    ``annotations/instances_default.json: /annotations/12: annotation 12: bbox has a negative width``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        pointer: str | None = None,
        item: str | None = None,
        annotation: int | str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.pointer = pointer
        self.item = item
        self.annotation = annotation
        super().__init__(self.located())

    def located(self) -> str:
        where: list[str] = []
        if self.file:
            position = self.file
            if self.line is not None:
                position += f":{self.line}"
                if self.column is not None:
                    position += f":{self.column}"
            where.append(position)
        if self.pointer:
            where.append(self.pointer)
        if self.item is not None:
            where.append(f"item {self.item!r}")
        if self.annotation is not None:
            where.append(f"annotation {self.annotation}")
        return ": ".join([*where, self.message])


class NotAuthenticated(AnnotaError):
    status_code = 401

    @classmethod
    def default_detail(cls) -> str:
        return "Authentication credentials were not provided."


class PermissionDenied(AnnotaError):
    status_code = 403

    @classmethod
    def default_detail(cls) -> str:
        return "You do not have permission to perform this action."


class NotFound(AnnotaError):
    status_code = 404

    @classmethod
    def default_detail(cls) -> str:
        return "Not found."


class MethodNotAllowed(AnnotaError):
    status_code = 405


class Conflict(AnnotaError):
    status_code = 409


class RequestInProgress(Conflict):
    """The same background request is already queued or running (its files are still needed)."""


class Gone(AnnotaError):
    status_code = 410


class PayloadTooLarge(AnnotaError):
    status_code = 413

    @classmethod
    def default_detail(cls) -> str:
        return "Request body is too large."


class TooManyRequests(AnnotaError):
    status_code = 429

    def __init__(self, detail: Any = None, *, retry_after: int = 1) -> None:
        self.retry_after = max(int(retry_after), 1)
        super().__init__(detail)

    @classmethod
    def default_detail(cls) -> str:
        return "Request was throttled."


class ServiceUnavailable(AnnotaError):
    status_code = 503


class ConfigError(AnnotaError):
    """An invalid setting; raised at start-up with a message naming the plugin and key."""


class StorageError(AnnotaError):
    """A storage backend could not store, read or delete an object."""


class InvalidObjectKey(ValidationError, StorageError):
    """A key or prefix that is malformed, or that the backend cannot hold (see ``annota.core.storage``)."""


class ObjectNotFound(NotFound, StorageError):
    """No object is stored under the key."""


class RangeNotSatisfiable(StorageError):
    """A byte range that does not lie inside the object."""

    status_code = 416
