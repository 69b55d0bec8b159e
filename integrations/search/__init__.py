"""The global search (issue 13): CIs, tickets, users and teams by what a person types, ranked and
grouped by type; the API's GET /search and the web desk's search box call the same service."""
