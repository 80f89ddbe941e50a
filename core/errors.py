"""The one project exception type, raised by readers, validators, checkpoints and models."""

from __future__ import annotations


class GPSError(Exception):
    """A user-facing error: the message names the file, the column/HDU, what was expected and what was found.

    The UI shows ``str(err)`` in an error box; the CLI prints it and exits with status 2.
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None,
                 expected: str | None = None, found: str | None = None) -> None:
        parts = []
        if source:
            parts.append(f"{source}")
        if field:
            parts.append(f"[{field}]")
        head = " ".join(parts)
        text = f"{head}: {message}" if head else message
        if expected is not None:
            text += f" (expected {expected}"
            text += f"; found {found})" if found is not None else ")"
        elif found is not None:
            text += f" (found {found})"
        super().__init__(text)
        self.message = message
        self.source = source
        self.field = field
        self.expected = expected
        self.found = found
