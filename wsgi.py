"""WSGI entry point: `gunicorn -c deploy/gunicorn.conf.py wsgi:app` or `flask --app wsgi ...`."""

from tracker import create_app

app = create_app()
