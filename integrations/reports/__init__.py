"""Asset reports: a registry of named reports, each as JSON, CSV and an SVG/PNG chart."""
