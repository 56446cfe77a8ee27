"""Input messages point at the real cause, and --no_progress silences the input downloads' bars too."""
from __future__ import annotations

import pytest

from lipsync_core.inputs.resolve import resolve_media
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing.media import talking_head_video
from tests.support.fake_drive import DriveFile, fake_drive
from tests.support.google_route import route_drive
from tests.support.servers import static_server


@pytest.fixture
def drive(monkeypatch):
    files: dict[str, DriveFile] = {}
    with fake_drive(files) as (base, log):
        route_drive(monkeypatch, base)
        yield files, log


def test_a_missing_file_whose_name_looks_like_a_drive_id_is_reported_missing(drive, tmp_path):
    _files, log = drive
    with pytest.raises(LipsyncError, match="^file not found: my_talking_head_recording_final$"):
        resolve_media("my_talking_head_recording_final", workdir=tmp_path)
    assert log == []  # no network was tried


def test_a_missing_file_named_exactly_like_a_drive_id_says_both(drive, tmp_path):
    with pytest.raises(LipsyncError, match="^MyTalkingHeadRecordingFinal2024: no such local file, and Google Drive "
                                           "did not serve a file with that ID either"):
        resolve_media("MyTalkingHeadRecordingFinal2024", workdir=tmp_path)


@pytest.mark.parametrize("link", ["https://drive.google.com/file/d/abc/view?usp=sharing",
                                  "https://drive.google.com/drive/my-drive", "drive.google.com/open?id=../x"])
def test_an_invalid_drive_link_is_reported_as_invalid(drive, tmp_path, link):
    _files, log = drive
    with pytest.raises(LipsyncError, match="is not a valid Google Drive file link"):
        resolve_media(link, workdir=tmp_path)
    assert log == []


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    talking_head_video(root / "talk.mp4", seconds=0.5)
    with static_server(root) as (base, _log):
        yield f"{base}/talk.mp4"


@pytest.mark.parametrize("progress", [True, False])
def test_progress_false_silences_the_download_bar(served, tmp_path, capfd, progress):
    resolve_media(served, workdir=tmp_path, progress=progress)
    err = capfd.readouterr().err
    assert ("talk.mp4" in err) is progress, err
