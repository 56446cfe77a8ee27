"""The face video and the audio of a run: local paths, Drive, URLs and YouTube, with trims."""
