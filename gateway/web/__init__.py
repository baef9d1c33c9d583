"""The web dashboard (``gateway web``): overview, search, lineage, dead letters, acknowledgments,
reconciliation and partners, and the operators' actions, over the same store and code as the CLI.

See docs/web.md. :func:`gateway.web.app.create_app` builds the ASGI application; the command is
:mod:`gateway.web.command`.
"""
