"""/webhooks: subscriptions, their deliveries, manual redelivery."""

from __future__ import annotations

from flask.views import MethodView

from cairn.api import Blueprint, check_if_match, with_etag
from cairn.auth.guard import requires
from cairn.auth.roles import ADMIN, AUDITOR, INTEGRATION
from cairn.pagination import paginate_select
from integrations.webhooks import services
from integrations.webhooks.schemas import (
    DeliveryQuerySchema,
    DeliverySchema,
    WebhookSchema,
    WebhookUpdateSchema,
    WebhookWriteSchema,
)

blp = Blueprint("webhooks", __name__, description="Signed webhooks for changes, with retries and a delivery log")

MANAGERS = (ADMIN, INTEGRATION)
READERS = (ADMIN, INTEGRATION, AUDITOR)


@blp.route("/webhooks")
class Webhooks(MethodView):
    @requires(*READERS)
    @blp.response(200, WebhookSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """List subscriptions (secrets are never shown again)."""
        return paginate_select(services.list_webhooks(), pagination_parameters)

    @requires(*MANAGERS)
    @blp.arguments(WebhookWriteSchema)
    @blp.response(201, WebhookSchema)
    def post(self, data):
        """Subscribe a URL to events; the answer carries the secret, once."""
        hook, secret = services.create_webhook(data)
        hook.plain_secret = secret
        return with_etag(hook)


@blp.route("/webhooks/<int:webhook_id>")
class WebhookById(MethodView):
    @requires(*READERS)
    @blp.response(200, WebhookSchema)
    def get(self, webhook_id):
        """One subscription."""
        return with_etag(services.get_webhook(webhook_id))

    @requires(*MANAGERS)
    @blp.arguments(WebhookUpdateSchema)
    @blp.response(200, WebhookSchema)
    def patch(self, data, webhook_id):
        """Change a subscription; active=true re-enables a disabled one."""
        hook = services.get_webhook(webhook_id, for_update=True)
        check_if_match(hook)
        services.update_webhook(hook, data)
        return with_etag(hook)

    @requires(*MANAGERS)
    @blp.response(204)
    def delete(self, webhook_id):
        """Unsubscribe (its deliveries go with it)."""
        hook = services.get_webhook(webhook_id, for_update=True)
        check_if_match(hook)
        services.delete_webhook(hook)


@blp.route("/webhooks/<int:webhook_id>/deliveries")
class Deliveries(MethodView):
    @requires(*READERS)
    @blp.arguments(DeliveryQuerySchema, location="query")
    @blp.response(200, DeliverySchema(many=True))
    @blp.paginate()
    def get(self, args, webhook_id, pagination_parameters):
        """The delivery log, newest first: status, attempts, response code and timing."""
        hook = services.get_webhook(webhook_id)
        return paginate_select(services.deliveries_of(hook, args.get("status")), pagination_parameters)


@blp.route("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>")
class DeliveryById(MethodView):
    @requires(*READERS)
    @blp.response(200, DeliverySchema)
    def get(self, webhook_id, delivery_id):
        """One delivery with its attempt log."""
        return services.get_delivery(services.get_webhook(webhook_id), delivery_id)


@blp.route("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
class Redeliver(MethodView):
    @requires(*MANAGERS)
    @blp.response(202, DeliverySchema)
    def post(self, webhook_id, delivery_id):
        """Send a delivery again now (same id and data, fresh timestamp and signature)."""
        hook = services.get_webhook(webhook_id)
        return services.redeliver(hook, services.get_delivery(hook, delivery_id))
