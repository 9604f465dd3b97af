"""Certificate resolvers: ACME (acme.json storage, HTTP-01, TLS-ALPN-01, renewals) and a local CA."""
