"""The HTTP surface: routes, middlewares, credentials and handlers."""
