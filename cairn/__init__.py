"""Cairn kernel: app factory, configuration, auth, change log, jobs, errors and CLI."""
