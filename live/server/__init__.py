"""The aiohttp application: routes, WebSockets, middlewares, static pages."""

from .app import create_app

__all__ = ["create_app"]
