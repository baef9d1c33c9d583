"""The gateway command line (the composition root for the CLI)."""
