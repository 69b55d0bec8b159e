"""Webhooks: subscriptions, the dispatcher that reads the change log as its outbox, signed
deliveries with retries, and the transport that refuses to reach inside the network."""
