"""ASGI entry point for uvicorn/gunicorn: ``segmentd.asgi:app``."""

from segmentd.main import create_app

app = create_app()
