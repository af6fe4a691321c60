"""WSGI entry point: `gunicorn -k gevent -w 1 wsgi:app` or `flask --app wsgi ...`."""

from tracker import create_app

app = create_app()
