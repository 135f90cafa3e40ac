"""The sample inputs used by the demo, the app's examples and the tests, written by code (never copied by hand).

- face.png: scikit-image's astronaut photo (Eileen Collins, NASA, public domain).
- line.wav: a short line spoken by the bundled Piper voice (CC0).
- talk.mp4: a 2-second video made from the photo with a slow zoom, so video input can be tried too.
"""
from __future__ import annotations

from pathlib import Path

LINE = "Welcome to the studio. This line was written as text and spoken by the bundled voice."


def make_face(path: Path) -> None:
    from skimage import data
    import cv2

    cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))


def make_line(path: Path) -> None:
    from .api import Studio
    from .audio.io import save_audio

    audio, sr = Studio(device="cpu").speak(LINE)
    save_audio(path, audio, sr)


def make_talk(path: Path, face: Path, seconds: float = 2.0, fps: int = 25) -> None:
    import cv2
    import numpy as np

    from .video.io import VideoWriter, read_image

    image = read_image(face)
    h, w = image.shape[:2]
    out_w, out_h = 480, 360
    with VideoWriter(path, out_w, out_h, fps) as writer:
        for i in range(int(seconds * fps)):
            zoom = 1.0 + 0.05 * i / (seconds * fps)  # slow push-in: the tracker must follow a moving face
            cw, ch = w / zoom, (w / zoom) * out_h / out_w
            x0, y0 = (w - cw) / 2, max(0.0, (h - ch) / 2 - 40)
            m = np.float32([[out_w / cw, 0, -x0 * out_w / cw], [0, out_h / ch, -y0 * out_h / ch]])
            writer.write(cv2.warpAffine(image, m, (out_w, out_h), flags=cv2.INTER_LINEAR))


def ensure_samples(folder, force: bool = False) -> dict[str, Path]:
    """Write the samples that are missing into ``folder``; returns their paths by name."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"face": folder / "face.png", "line": folder / "line.wav", "talk": folder / "talk.mp4"}
    makers = {"face": make_face, "line": make_line, "talk": lambda p: make_talk(p, paths["face"])}
    for name, path in paths.items():
        if force or not path.exists():
            makers[name](path)
    return paths
