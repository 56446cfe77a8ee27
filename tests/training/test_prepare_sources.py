"""Where prepare's clips come from: a folder (a mounted Google Drive folder) stands for the videos in it."""
from __future__ import annotations

from lipsync_core.training.prepare import Source, expand_sources


def test_a_folder_of_videos_becomes_its_videos_in_name_order_with_the_folders_trim(tmp_path):
    folder = tmp_path / "MyDrive" / "clips"
    folder.mkdir(parents=True)
    for name in ("b_take.mp4", "a_take.mov", "notes.txt", "still.png", ".hidden.mp4", "voice.wav"):
        (folder / name).write_bytes(b"x")
    got = expand_sources([Source(str(folder), start="1", end="9"), "https://youtu.be/abc"])
    assert got == [Source(str(folder / "a_take.mov"), "1", "9"), Source(str(folder / "b_take.mp4"), "1", "9"),
                   Source("https://youtu.be/abc")]
