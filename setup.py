"""Packaging for lipsync_core.

The top-level ``weights_manifest.json`` is the single source of the weights manifest; ``build_py``
copies it into the package so a non-editable install (``pip install git+...``, as on Colab) has it too.
"""
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
MANIFEST = "weights_manifest.json"


class BuildPyWithManifest(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "lipsync_core" / MANIFEST
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HERE / MANIFEST, target)


setup(
    name="lipsync_core",
    version="0.1.0",
    description="Wav2Lip lip-sync toolkit: streaming pipeline, HQ and CodeFormer variants, verified weights",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["lipsync_core", "lipsync_core.*"]),
    include_package_data=False,
    cmdclass={"build_py": BuildPyWithManifest},
    install_requires=[
        # torch is deliberately unpinned here: install the build you want first (README); never torchvision.
        "torch>=2.6",  # weights_only=True loading with the CVE-2025-32434 fix
        "numpy>=1.24",
        "pocketsphinx>=5",  # lipsync cues: speech recognition and alignment (ships the en-us models)
        "opencv-python-headless>=4.8,<5",  # 5.x wheels ship no Haar cascades
        "tqdm>=4.60",
        "imageio-ffmpeg>=0.5",
        "gdown>=5.2",  # 5.1 resumes into any file named <dest>.part*
        "requests>=2.28",
        "yt-dlp>=2024.1.1",
    ],
    extras_require={
        "notebook": ["ipywidgets>=8.0"],
        "ray": ["ray>=2.9"],  # lipsync batch --ray: jobs on Ray actors, one machine or a cluster
        "test": [
            "pytest>=7",
            "nbclient>=0.9",
            "nbformat>=5.9",
            "ipykernel>=6.25",
            "ipywidgets>=8.0",
            "ruff>=0.4",
            "mypy==2.4.1",  # the type check in the README's test command; pinned: new releases find new errors
            "librosa>=0.10.1",  # an independent reference for the mel filter bank (not used at run time)
            "python_speech_features>=0.6",  # the reference for SyncNet's MFCCs (not used at run time)
            "ray>=2.9",  # the batch tests run a real local Ray instance
        ],
    },
    entry_points={"console_scripts": ["lipsync=lipsync_core.front.cli:main"]},
)
