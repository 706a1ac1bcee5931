"""The scoring API (FastAPI): ``create_app`` builds it; ``creditrisk serve`` runs it with uvicorn."""

from backend.api.app import create_app

__all__ = ["create_app"]
