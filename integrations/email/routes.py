"""/inbound-email (the HTTP source, the intake's record) and /outbound-email (notifications)."""

from __future__ import annotations

from flask import Response, request
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import select

from cairn.api import Blueprint
from cairn.auth.guard import requires
from cairn.auth.roles import ADMIN, AGENT, AUDITOR, INTEGRATION
from cairn.auth.scopes import MAIL_INBOUND, scope
from cairn.db import db
from cairn.http import accepts
from cairn.pagination import paginate_select
from integrations.email import intake
from integrations.email.models import InboundEmail, OutboundEmail
from integrations.email.schemas import (
    InboundAcceptedSchema,
    InboundEmailSchema,
    InboundPostArgsSchema,
    InboundQuerySchema,
    OutboundEmailSchema,
    OutboundQuerySchema,
)

blp = Blueprint("email", __name__, description="E-mail intake and notifications")

# Mail holds personal data: readers are the staff who work tickets or audit, not requesters.
MAIL_READERS = (ADMIN, AGENT, INTEGRATION, AUDITOR)
MAIL_WRITERS = (ADMIN, INTEGRATION)


@blp.route("/inbound-email")
class InboundMail(MethodView):
    @requires(*MAIL_READERS)
    @blp.arguments(InboundQuerySchema, location="query")
    @blp.response(200, InboundEmailSchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """Stored mail, newest first; ?status=ignored shows what was dropped and why."""
        stmt = select(InboundEmail)
        if filters.get("status"):
            stmt = stmt.where(InboundEmail.status.in_(filters["status"]))
        for key in ("source", "ticket_id", "from_address"):
            if filters.get(key) is not None:
                stmt = stmt.where(getattr(InboundEmail, key) == filters[key])
        return paginate_select(stmt.order_by(InboundEmail.id.desc()), pagination_parameters)

    @requires(*MAIL_WRITERS)
    @scope(MAIL_INBOUND)
    @accepts("message/rfc822")
    @blp.arguments(InboundPostArgsSchema, location="query")
    @blp.response(202, InboundAcceptedSchema)
    def post(self, args):
        """Hand over one raw message (Content-Type message/rfc822); the same Message-ID twice is one ticket."""
        request.max_content_length = intake.max_bytes()
        raw = request.get_data(cache=False)
        if not raw.strip():
            abort(422, message="The body is empty; send the raw message.")
        try:
            row, _ = intake.accept(raw, source="http", mailbox=args.get("mailbox"), kind=args.get("kind"))
        except intake.TooLarge as exc:
            abort(413, message=str(exc))
        db.session.refresh(row)
        return {"id": row.id, "status": row.status}


@blp.route("/inbound-email/<int:email_id>")
class InboundMailById(MethodView):
    @requires(*MAIL_READERS)
    @blp.response(200, InboundEmailSchema)
    def get(self, email_id):
        """One stored message: its status, the ticket and comment it made, or why not."""
        return intake.get_inbound(email_id)


@blp.route("/inbound-email/<int:email_id>/raw")
class InboundMailRaw(MethodView):
    @requires(*MAIL_READERS)
    @blp.response(200, content_type="message/rfc822")
    def get(self, email_id):
        """The message exactly as received."""
        row = intake.get_inbound(email_id)
        return Response(
            row.raw,
            mimetype="message/rfc822",
            headers={
                "Content-Disposition": f'attachment; filename="mail-{row.id}.eml"',
                "X-Content-Type-Options": "nosniff",
            },
        )


@blp.route("/inbound-email/<int:email_id>/reprocess")
class InboundMailReprocess(MethodView):
    @requires(ADMIN)
    @blp.response(202, InboundAcceptedSchema)
    def post(self, email_id):
        """Queue a failed or ignored message again (409 for others)."""
        row = intake.reprocess(email_id)
        intake.queue_processing(row)
        db.session.refresh(row)
        return {"id": row.id, "status": row.status}


@blp.route("/outbound-email")
class OutboundMail(MethodView):
    @requires(*MAIL_READERS)
    @blp.arguments(OutboundQuerySchema, location="query")
    @blp.response(200, OutboundEmailSchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """Notifications sent, queued, failed or suppressed, newest first."""
        stmt = select(OutboundEmail)
        if filters.get("status"):
            stmt = stmt.where(OutboundEmail.status.in_(filters["status"]))
        for key in ("ticket_id", "recipient"):
            if filters.get(key) is not None:
                stmt = stmt.where(getattr(OutboundEmail, key) == filters[key])
        return paginate_select(stmt.order_by(OutboundEmail.id.desc()), pagination_parameters)
