"""The web dashboard (static files served by the controller; see views.py)."""
