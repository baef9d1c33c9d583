"""Channels: where files come from (the watched inbox today; SFTP in a later issue)."""
