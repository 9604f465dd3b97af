"""TLS: ClientHello peek, certificate store, TLS options (contexts built at compile time)."""
