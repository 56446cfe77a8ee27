"""Safe reading of PyTorch checkpoint files, whatever their serialisation and wrapper.

Knows no architecture. Reads the legacy (pre-1.6) pickle format of the released Wav2Lip files and
the zip format, always with ``weights_only=True`` (no arbitrary unpickling, ever) and onto the CPU
(the released files store their tensors on ``cuda:0``). A file that is not a checkpoint (an empty or
truncated download, a web page saved under the checkpoint's name, ...) raises one ``LipsyncError``
that names the file and says what it really is.
"""
from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch

from ..support.errors import LipsyncError
from ..support.files import atomic_file

#: How a checkpoint wraps its state dict: as is, or under a ``state_dict``/``params``/``params_ema`` key.
CONVENTIONS = ("state_dict", "params", "params_ema", "raw")

StateDict = dict[str, torch.Tensor]
Format = Literal["zip", "legacy", "torchscript"]

_ZIP_MAGIC = b"PK\x03\x04"
# Legacy torch.save files start with a pickled protocol header whose first value is this magic number.
_LEGACY_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_SNIFF_BYTES = 64 * 1024  # enough to recognise a saved web page by its head
_DATA_PARALLEL_PREFIX = "module."
# Wrapper keys tried for each convention, preferred first; any other wrapper is the fallback.
_PREFERRED: dict[str, tuple[str, ...]] = {
    "state_dict": ("state_dict",), "params": ("params",), "params_ema": ("params_ema", "params"), "raw": ()}
_WRAPPERS = ("params_ema", "params", "state_dict")
_REDOWNLOAD = "delete it and download it again"


def checkpoint_format(path: str | Path) -> Format:
    """What kind of PyTorch file ``path`` is; anything else raises ``LipsyncError`` saying what it is."""
    p = Path(path)
    if not p.is_file():
        raise LipsyncError(f"checkpoint not found: {p}" if not p.exists() else f"{p} is not a file")
    size = p.stat().st_size
    if size == 0:
        raise LipsyncError(f"{p} is empty (0 bytes): the download failed; {_REDOWNLOAD}")
    with p.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    if head.startswith(_ZIP_MAGIC):
        return _zip_format(p, size)
    if head[:1] == b"\x80" and _LEGACY_MAGIC in head[:16]:
        return "legacy"
    raise LipsyncError(_not_a_checkpoint(p, head))


def read_checkpoint(path: str | Path) -> object:
    """The object a checkpoint file holds, loaded safely onto the CPU (TorchScript archives are refused)."""
    p = Path(path)
    fmt = checkpoint_format(p)
    if fmt == "torchscript":
        raise LipsyncError(f"{p} is a TorchScript archive (a compiled model), not a weights checkpoint: "
                           "use the .pth checkpoint instead")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except pickle.UnpicklingError as e:
        unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        if unsafe is None:
            raise LipsyncError(_damaged(p, fmt, e)) from None
        raise LipsyncError(f"{p} holds Python objects besides weights ({unsafe.group(1)}), which are not loaded "
                           "for safety: save its state_dict alone with torch.save(model.state_dict(), path)") from None
    except Exception as e:  # every other parse failure of the bytes means a damaged file
        raise LipsyncError(_damaged(p, fmt, e)) from None


def read_torchscript_state(path: str | Path) -> StateDict:
    """The parameters and buffers of a TorchScript archive, on the CPU, ``module.`` prefixes removed."""
    p = Path(path)
    try:
        with warnings.catch_warnings():
            # TorchScript is deprecated upstream, but it is what the official Wav2Lip link serves now.
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(p), map_location="cpu")
    except MemoryError:
        raise
    except Exception as e:
        raise LipsyncError(_damaged(p, "torchscript", e)) from None
    return {_strip_prefix(k): v.detach() for k, v in module.state_dict().items()}


def extract_state_dict(obj: object, convention: str, path: str | Path) -> StateDict:
    """The state dict inside a loaded checkpoint, with ``module.`` (DataParallel) prefixes removed.

    ``convention`` says which wrapper to prefer: ``state_dict`` (Wav2Lip training files, which also hold
    ``optimizer`` and ``global_step``), ``params``, ``params_ema`` (falls back to ``params``) or ``raw``.
    A plain dict of tensors is accepted under every convention, and so is another known wrapper when the
    preferred one is absent. Non-tensor entries are dropped.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown checkpoint convention {convention!r}; expected one of {CONVENTIONS}")
    state = _select(obj, _PREFERRED[convention])
    if state is None:
        raise LipsyncError(f"{path} holds no tensors ({_summary(obj)}): it is not a model checkpoint")
    return {_strip_prefix(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def save_stripped(state_dict: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """Write ``state_dict`` alone as a zip-format checkpoint, atomically (readable with any convention).

    Used to keep a small, fast, weights-only copy beside a large training checkpoint.
    """
    save_atomic({k: _compact(v) for k, v in state_dict.items()}, path)


def save_atomic(obj: object, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` (zip format) through a temporary file in the same folder, synced and then
    renamed: the file is either the old one or the complete new one, never half written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(p) as f:
        torch.save(obj, f)
    return p


def _zip_format(p: Path, size: int) -> Format:
    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
    except zipfile.BadZipFile:
        raise LipsyncError(f"{p} is a truncated PyTorch checkpoint ({size:,} bytes, the end of its zip archive "
                           f"is missing): {_REDOWNLOAD}") from None
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        return "torchscript"
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return "zip"
    raise LipsyncError(f"{p} is a zip archive but not a PyTorch checkpoint (it holds {', '.join(names[:3])}, ...)")


def _not_a_checkpoint(p: Path, head: bytes) -> str:
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if text.startswith(b"version https://git-lfs"):
        return f"{p} is a Git LFS pointer, not the file itself: download it through its LFS (resolve) URL"
    if text.startswith(b"<") and (b"<html" in text or b"<!doctype html" in text):
        if b"google" in text and (b"drive" in text or b"docs" in text):
            what = "a Google Drive web page (a quota, permission or virus-scan notice)"
        elif b"sharepoint" in text or b"onedrive" in text or b"microsoftonline" in text:
            what = "a SharePoint/OneDrive web page (a login page or an expired link)"
        else:
            what = "an HTML web page"
        return f"{p} is {what} saved under a checkpoint's name, not model weights: {_REDOWNLOAD} from another source"
    return f"{p} is not a PyTorch checkpoint (unrecognised content starting with {head[:8]!r}): {_REDOWNLOAD}"


def _damaged(p: Path, fmt: str, error: BaseException) -> str:
    reason = (str(error).strip().splitlines() or [""])[0][:120] or type(error).__name__
    return (f"{p} is a truncated or damaged checkpoint ({fmt} format, {p.stat().st_size:,} bytes: {reason}): "
            f"{_REDOWNLOAD}")


def _select(obj: object, preferred: tuple[str, ...]) -> Mapping | None:
    if not isinstance(obj, Mapping):
        return None
    for key in (*preferred, *_WRAPPERS):
        sub = obj.get(key)
        if isinstance(sub, Mapping) and _has_tensors(sub):
            return sub
    return obj if _has_tensors(obj) else None


def _has_tensors(m: Mapping) -> bool:
    return any(isinstance(v, torch.Tensor) for v in m.values())


def _summary(obj: object) -> str:
    if isinstance(obj, Mapping):
        keys = [str(k) for k in obj]
        return f"top-level keys: {', '.join(keys[:6])}{', ...' if len(keys) > 6 else ''}" if keys else "an empty dict"
    return f"a {type(obj).__name__}"


def _strip_prefix(key: str) -> str:
    return key.removeprefix(_DATA_PARALLEL_PREFIX)


def _compact(t: torch.Tensor) -> torch.Tensor:
    """A CPU tensor that owns exactly its own bytes (torch.save writes whole storages, views included)."""
    t = t.detach().cpu()
    if t.untyped_storage().nbytes() != t.numel() * t.element_size() or not t.is_contiguous():
        t = t.clone(memory_format=torch.contiguous_format)
    return t
