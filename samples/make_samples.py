"""Write the sample inputs (samples/face.png, line.wav, talk.mp4). Run: python samples/make_samples.py [--force]

The files are made by code in ``studio.samples`` (public-domain photo, the bundled CC0 voice), never copied by hand.
"""
import sys
from pathlib import Path

from studio.samples import ensure_samples

if __name__ == "__main__":
    for name, path in ensure_samples(Path(__file__).resolve().parent, force="--force" in sys.argv).items():
        print(f"{name}: {path}")
