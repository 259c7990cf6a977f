"""The ASGI entry point uvicorn imports in each worker process."""

from app.http.app import create_app

app = create_app()
