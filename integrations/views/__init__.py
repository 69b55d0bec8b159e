"""Saved views: a list's filters, columns and sort under a name, private or shared with a team."""
