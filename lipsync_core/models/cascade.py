"""OpenCV cascade classifiers (XML): the one kind of weight file here that is not a torch checkpoint.

:func:`load_cascade` reads one into a ``cv2.CascadeClassifier``; :func:`validate` is its check for the
weights cache (``models.validator("opencv_cascade")``). Any file OpenCV cannot use raises one ``LipsyncError``.
"""
from __future__ import annotations

from pathlib import Path

import cv2

from ..support.errors import LipsyncError

_XML_HEAD = b"<?xml"


def load_cascade(path: str | Path) -> cv2.CascadeClassifier:
    """The cascade classifier stored at ``path``; a LipsyncError naming the file when it is none."""
    p = Path(path)
    if not p.is_file():
        raise LipsyncError(f"cascade file not found: {p}" if not p.exists() else f"{p} is not a file")
    with p.open("rb") as f:
        head = f.read(64).lstrip()
    if not head.startswith(_XML_HEAD):
        what = "empty (0 bytes)" if not head else "not an XML file"
        raise LipsyncError(f"{p} is {what}, not an OpenCV cascade: delete it and download it again")
    cascade = cv2.CascadeClassifier()
    try:
        ok = cascade.load(str(p))
    except cv2.error as exc:  # malformed or truncated XML
        reason = str(exc).strip().splitlines()[-1][:160]
        raise LipsyncError(f"{p} is not a readable OpenCV cascade ({reason}): "
                           "delete it and download it again") from None
    if not ok or cascade.empty():
        raise LipsyncError(f"OpenCV could not load {p} as a cascade classifier: delete it and download it again")
    return cascade


def validate(path: str | Path) -> None:
    """Raise ``LipsyncError`` unless ``path`` loads as an OpenCV cascade classifier."""
    load_cascade(path)
