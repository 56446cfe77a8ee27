"""Weight files: the manifest, the verified cache and downloads (HTTP, Google Drive)."""
