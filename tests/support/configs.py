"""The smallest configuration that loads, for tests that add a section to it."""

GOOD = """\
pages:
  storefront: {title: Storefront}
routes:
  - {path: /, page: storefront}
"""
