"""Notifications (issue 4): email and HMAC-signed webhooks about deployments, through an outbox."""
