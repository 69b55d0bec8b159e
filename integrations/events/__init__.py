"""Monitoring events in, incidents out: intake (generic JSON and Alertmanager's webhook), binding to
CIs by rules as data, correlation through the dependency graph into one incident per root cause."""
