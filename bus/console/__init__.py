"""The web console (``/console``): the operators' and archivists' front door in a browser.

Server-rendered pages (Jinja2) over the API's own functions, with the API's identities,
roles and sessions; French first (``locales/*.json``); assets shipped in the package.
``mount`` adds its routes and static files to the API's application.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from bus.console import admin, dashboard, documents, operations, signin
from bus.console.web import PREFIX, STATIC


def mount(app: FastAPI) -> None:
    """Serve the console under ``/console`` on ``app``."""
    for module in (signin, dashboard, documents, operations, admin):
        app.include_router(module.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")
