"""Job functions the job tests enqueue by dotted name."""

from cairn.auth.services import create_team


def make_team(name: str) -> int:
    return create_team(name).id


def fail(reason: str) -> None:
    create_team(f"never-committed-{reason}")
    raise RuntimeError(reason)
