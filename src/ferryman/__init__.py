"""ferryman: an edge router and reverse proxy that reads Traefik v3 configuration unchanged."""

__version__ = "0.1.0"
#: The Traefik configuration generation ferryman reads.
TRAEFIK_COMPAT = "v3"
