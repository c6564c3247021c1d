"""The Standard Webhooks headers of one delivery attempt, signed by the specification's library."""

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from lendo_api.webhooks.registrations import StoredWebhook


def signed_headers(
    webhook: StoredWebhook, event_id: str, body: str, at: datetime
) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` for ``body`` sent ``at``.

    Signed with the webhook's secret and, while its grace lasts, also with the
    secret it replaced: a receiver accepts the delivery if any signature matches.
    """
    secrets = [webhook.secret]
    if webhook.previous_secret is not None and (
        webhook.previous_secret_until is None or at < webhook.previous_secret_until
    ):
        secrets.append(webhook.previous_secret)
    moment = at.astimezone(UTC)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join(
            Webhook(secret).sign(event_id, moment, body) for secret in secrets
        ),
        "content-type": "application/json",
    }
