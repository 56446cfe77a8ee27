"""An emulation of the original Wav2Lip ``inference.py`` (Rudrabha/Wav2Lip 5c90fa9) for timing, when the original
itself is not installed: the same steps, batch sizes, precision and data layout, written here from
``reference/wav2lip_original.md`` §3.2 (its step numbers below) and §4. The networks are this package's modules
(same architectures; Wav2Lip's BatchNorm left unfolded and NCHW tensors, as the original runs them).

Differences, all in the original's favour or neutral: the mel is this package's (the same formula, vectorised
numpy where the original calls librosa); S3FD's ReLUs are in place; no OOM restart ever fires.

    python benchmarks/original_inference.py --checkpoint_path wav2lip.pth --s3fd_path s3fd.pth \\
        --face face.mp4 --audio speech.wav --outfile out.mp4
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_detect import original_face_detect  # noqa: E402

IMG_SIZE = 96
MEL_STEP = 16


def smoothened(boxes: np.ndarray, t: int = 5) -> np.ndarray:
    """``get_smoothened_boxes``: forward 5-frame mean, written back in place."""
    for i in range(len(boxes)):
        window = boxes[len(boxes) - t:] if i + t > len(boxes) else boxes[i:i + t]
        boxes[i] = np.mean(window, axis=0)
    return boxes


def run(checkpoint: str, s3fd: str, face: str, audio: str, outfile: str, *, pads=(0, 10, 0, 0),
        face_det_batch_size: int = 16, wav2lip_batch_size: int = 128) -> dict[str, float]:
    """The whole run; returns seconds per step (``read``, ``mel``, ``detect``, ``sync`` (generator, paste and AVI
    writing), ``mux``)."""
    import time

    from lipsync_core.media import audio as audio_mod
    from lipsync_core.media.ffmpeg import ffmpeg_exe
    from lipsync_core.models import load

    times: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        times[name] = time.perf_counter() - t0
        t0 = time.perf_counter()

    # 2. every frame into RAM
    cap = cv2.VideoCapture(face)
    fps = cap.get(cv2.CAP_PROP_FPS)
    full_frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        full_frames.append(frame)
    cap.release()
    lap("read")
    # 3-4. audio, mel, chunks
    wav = audio_mod.load_audio(audio)
    mel = audio_mod.melspectrogram(wav)
    mel_chunks, i, mult = [], 0, 80.0 / fps
    while True:
        start = int(i * mult)
        if start + MEL_STEP > mel.shape[1]:
            mel_chunks.append(mel[:, mel.shape[1] - MEL_STEP:])
            break
        mel_chunks.append(mel[:, start:start + MEL_STEP])
        i += 1
    full_frames = full_frames[:len(mel_chunks)]  # 5.
    lap("mel")
    # 6. face detection: the detector is built per call; batches of 16 full-resolution frames
    net = load("s3fd", s3fd, fuse=False)
    found = original_face_detect(net, full_frames, face_det_batch_size)
    del net
    h, w = full_frames[0].shape[:2]
    boxes = []
    for rect in found:
        if rect is None:
            raise ValueError("Face not detected! Ensure the video contains a face in all the frames.")
        x1, y1, x2, y2 = rect
        boxes.append([max(0, x1 - pads[2]), max(0, y1 - pads[0]), min(w, x2 + pads[3]), min(h, y2 + pads[1])])
    boxes = smoothened(np.array(boxes))
    results = [[f[y1:y2, x1:x2], (y1, y2, x1, x2)] for f, (x1, y1, x2, y2) in zip(full_frames, boxes)]
    lap("detect")
    # 7-9. datagen, model on the first batch, DIVX AVI writer, hard paste
    with tempfile.TemporaryDirectory() as tmp:
        avi = str(Path(tmp) / "result.avi")
        model = out = None
        img_b, mel_b, frame_b, coords_b = [], [], [], []

        def flush() -> None:
            nonlocal model, out
            img = np.asarray(img_b)
            masked = img.copy()
            masked[:, IMG_SIZE // 2:] = 0
            img = np.concatenate((masked, img), axis=3) / 255.0
            mels = np.reshape(np.asarray(mel_b), [len(mel_b), mel_b[0].shape[0], mel_b[0].shape[1], 1])
            if model is None:
                model = load("wav2lip", checkpoint, fuse=False)
                out = cv2.VideoWriter(avi, cv2.VideoWriter_fourcc(*"DIVX"), fps, (w, h))
            img_t = torch.FloatTensor(np.transpose(img, (0, 3, 1, 2)))
            mel_t = torch.FloatTensor(np.transpose(mels, (0, 3, 1, 2)))
            with torch.no_grad():
                pred = model(mel_t, img_t)
            pred = pred.cpu().numpy().transpose(0, 2, 3, 1) * 255.0
            for p, f, c in zip(pred, frame_b, coords_b):
                y1, y2, x1, x2 = c
                f[y1:y2, x1:x2] = cv2.resize(p.astype(np.uint8), (x2 - x1, y2 - y1))
                out.write(f)

        for i, m in enumerate(mel_chunks):
            idx = i % len(full_frames)
            frame = full_frames[idx].copy()
            crop, coords = results[idx]
            img_b.append(cv2.resize(crop, (IMG_SIZE, IMG_SIZE)))
            mel_b.append(m)
            frame_b.append(frame)
            coords_b.append(coords)
            if len(img_b) >= wav2lip_batch_size:
                flush()
                img_b, mel_b, frame_b, coords_b = [], [], [], []
        if img_b:
            flush()
        out.release()
        lap("sync")
        # 10. mux (the original's command, re-encoding the AVI with libx264 defaults)
        subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", audio, "-i", avi, "-strict", "-2",
                        "-q:v", "1", outfile], check=True)
        lap("mux")
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint_path", required=True)
    ap.add_argument("--s3fd_path", required=True)
    ap.add_argument("--face", required=True)
    ap.add_argument("--audio", required=True)
    ap.add_argument("--outfile", required=True)
    ap.add_argument("--face_det_batch_size", type=int, default=16)
    ap.add_argument("--wav2lip_batch_size", type=int, default=128)
    a = ap.parse_args()
    run(a.checkpoint_path, a.s3fd_path, a.face, a.audio, a.outfile, face_det_batch_size=a.face_det_batch_size,
        wav2lip_batch_size=a.wav2lip_batch_size)


if __name__ == "__main__":
    main()
