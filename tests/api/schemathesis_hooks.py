"""Loaded by run_schemathesis.sh (SCHEMATHESIS_HOOKS): how to send the bodies schemathesis has no
serializer for. A CSV import and a raw mail message are documented as bytes (format: binary): sent
as they are drawn."""

import schemathesis

schemathesis.serializer.alias(["message/rfc822", "text/csv"], "application/octet-stream")
