"""Built-in identity: projects, users, role assignments and tokens.

A service layer like ``services/``: plain functions over a session, raising
``errors.*`` only, never importing the web framework.  The Keystone v3 wire
format lives in ``api/identity.py``.
"""
