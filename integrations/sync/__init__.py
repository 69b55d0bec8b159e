"""Sync with external tools: bulk writes, discovery bookkeeping, import jobs (issue 6)."""
