"""Choppity (choppity.com): server-side drafts, signed webhooks, 60 requests per minute."""
