"""`gunicorn wsgi:app`: the app; without Redis, also the embedded runner of periodic work."""

from cairn.app import create_app
from cairn.jobs.embedded import start_embedded_runner

app = create_app()
start_embedded_runner(app)
