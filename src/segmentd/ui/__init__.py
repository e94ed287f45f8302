"""The web console: server-rendered pages under ``/ui/`` over the API's services.

Every page and form is a pipeline route (``api.pipeline``): it declares the
permission it exercises, authenticates with the console's session cookie
(``ui.session``) instead of a token header, and calls the same services with
the same scopes as the API, so a member sees exactly what the API shows it.
"""
