"""Use cases: what Greenlight does, independent of how it is asked (Slack, webhooks, timers)."""
