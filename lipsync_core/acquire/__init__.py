"""Acquisition: the weights manifest and cache, downloads (HTTP, Google Drive), input media (local, URL, YouTube)."""
