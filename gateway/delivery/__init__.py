"""Delivery: from a request's token to a redirect or a locally rendered image."""

from gateway.delivery.links import delivery_url, signed_delivery_url
from gateway.delivery.proxy import Proxy
from gateway.delivery.redirects import Redirect, compile_redirect
from gateway.delivery.renderer import Job, Rendered, Renderer, negotiate
from gateway.delivery.resolver import Resolved, Resolver

__all__ = [
    "Job",
    "Proxy",
    "Redirect",
    "Rendered",
    "Renderer",
    "Resolved",
    "Resolver",
    "compile_redirect",
    "delivery_url",
    "negotiate",
    "signed_delivery_url",
]
