"""The web dashboard: server-rendered pages (Jinja2) and the vanilla JS that refreshes them.

``pages.router`` holds the pages, the static assets and ``/api/live``; ``create_app`` includes
it. Pages check the session cookie themselves and redirect to the login page without one, so
they are listed in ``PUBLIC_ROUTES``; every JSON endpoint they call checks its role as usual.
"""
