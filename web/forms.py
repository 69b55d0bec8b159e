"""Form handling shared by pages: a domain error shown next to the form that caused it."""

from __future__ import annotations

from flask import flash, g

from cairn.errors import DomainError


def keep_errors(error: DomainError) -> None:
    """Show ``error`` on the page being rendered: its message as a flash, its field errors by field."""
    flash(error.detail, "error")
    g.field_errors = {key: list(value) for key, value in (error.errors or {}).items()}


def flash_refusal(error: DomainError) -> None:
    """For a form that redirects: roll back, and say why it was refused (field errors included) on
    the page it returns to."""
    from cairn.db import db

    db.session.rollback()
    details = [f"{name}: {' '.join(map(str, messages))}" for name, messages in (error.errors or {}).items()]
    flash(" ".join([error.detail, *details]), "error")


def field_errors() -> dict[str, list[str]]:
    return g.get("field_errors") or {}


def form_int(value: str | None) -> int | None:
    """A whole number from a form field, or None when empty or not a number."""
    text = (value or "").strip()
    return int(text) if is_number(text) and len(text) < 12 else None


def is_number(text: str) -> bool:
    """Only the digits 0-9 (str.isdigit also takes "²", which int() refuses)."""
    return text.isascii() and text.isdigit()


def load(schema, data: dict) -> dict:
    """Form input through the API's own marshmallow schema (one set of rules, two front doors);
    invalid input raises Invalid (422) with the field errors, like the API."""
    from marshmallow import ValidationError

    from cairn.errors import Invalid

    try:
        return schema.load(data)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise Invalid("Some fields are invalid.", errors=messages) from None


def present(form, *names: str, ints: tuple[str, ...] = ()) -> dict:
    """The named fields the form filled in (empty ones left out, as an API client would omit them);
    those in ``ints`` as whole numbers when they are (else as typed, for the schema to refuse)."""
    data = {}
    for name in (*names, *ints):
        value = form.get(name)
        if (value or "").strip():
            data[name] = int(value) if name in ints and is_number(value.strip().lstrip("-")) else value
    return data
