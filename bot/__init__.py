"""Greenlight: review and approve AI-drafted social posts without leaving Slack."""

__version__ = "0.1.0"
