"""The mapper's HTTP API (FastAPI)."""

from llama_mapper.api.app import create_app

__all__ = ["create_app"]
