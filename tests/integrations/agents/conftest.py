import gzip
import zlib
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "agents"


def fixture_xml(name: str) -> bytes:
    """A captured inventory (written here by the agent's --local option)."""
    return gzip.decompress((FIXTURES / f"{name}.xml.gz").read_bytes())


def compressed(xml: bytes | str) -> bytes:
    return zlib.compress(xml.encode() if isinstance(xml, str) else xml)


@pytest.fixture
def site_token(db):
    from integrations.agents.services import create_token

    _, secret = create_token("hq")
    db.session.commit()
    return secret
