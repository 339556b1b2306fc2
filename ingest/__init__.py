"""Ingest: raw files and URLs -> cleaned documents -> structured chunks -> a hybrid index on disk."""
