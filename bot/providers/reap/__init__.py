"""Reap (reap.video): drafts held by Greenlight, an unsigned project webhook, 10 requests per minute."""
