"""Test helpers shipped with the package: a local fake model server."""
