"""Notifications: typed controller events delivered to Slack and generic JSON webhooks."""
