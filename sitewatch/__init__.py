"""sitewatch: watch registered archaeological sites from space.

The ``sitewatch`` package is the application shell: the CLI, the exception hierarchy and the
run configuration.  The domains live in their own packages: ``sites`` (registry),
``change_detection`` (pure numeric core), ``pipelines`` (imagery providers, store, Prefect flows),
``maps`` (weekly map, field packs) and ``reports`` (community reports).
"""

__version__ = "0.1.0"
