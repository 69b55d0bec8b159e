"""Helpers for building small estates whose asset figures are known by hand."""

from __future__ import annotations

import csv
import io
import itertools
import struct

import pytest

_tags = itertools.count(1)


class Assets:
    """Builds vendors, contracts, licences, software and installations through the services."""

    def __init__(self, db, make):
        self.db = db
        self.make = make

    def commit(self, obj):
        self.db.session.commit()
        return obj

    def vendor(self, name=None, **fields):
        from cmdb.assets.services import create_vendor

        return self.commit(create_vendor({"name": name or f"Vendor {next(_tags)}", **fields}))

    def device(self, ci_class="laptop", **fields):
        fields.setdefault("asset_tag", f"TAG-{next(_tags):05d}")
        fields.setdefault("status", "deployed")
        return self.make.ci(ci_class, **fields)

    def software(self, name=None, **attributes):
        return self.make.ci("software", name=name, attributes=attributes)

    def install(self, software, device):
        from relations.services import create_relationship

        rel = create_relationship({"source_id": software.id, "type": "installed_on", "target_id": device.id})
        return self.commit(rel)

    def licence(self, software, model="per_device", quantity=1, **fields):
        from datetime import date

        from cmdb.assets.services import create_licence

        data = {"software_id": software.id, "model": model, "quantity": quantity, "start_date": date(2000, 1, 1)}
        data.update(fields)
        return self.commit(create_licence(data))

    def contract(self, vendor=None, cis=(), **fields):
        from datetime import date

        from cmdb.assets.services import create_contract

        data = {
            "vendor_id": (vendor or self.vendor()).id,
            "type": "support",
            "start_date": date(2024, 1, 1),
            "ci_ids": [c.id for c in cis],
        }
        data.update(fields)
        return self.commit(create_contract(data))


@pytest.fixture
def assets(db, make):
    return Assets(db, make)


@pytest.fixture
def manager(make):
    """Headers of an asset manager."""
    return make.headers("asset_manager")


def parse_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])
