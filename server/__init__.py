"""Interfaces over the answering core: the CLI, the HTTP service and the Slack bot."""
