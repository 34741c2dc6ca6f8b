"""The demo storefront: a small shop that trusts the gateway's identity headers."""
