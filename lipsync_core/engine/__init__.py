"""What a run consists of and how it runs: options, catalog, plan, session and the two passes."""
