"""Webhook deliveries: signing, retry policy, offset progress and the delivery service."""
