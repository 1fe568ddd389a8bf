"""Inbound adapters: the Litestar app, DICOMweb routes and (later) GraphQL."""
