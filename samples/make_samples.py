"""Write the sample inputs used by the demo, the app's examples and the tests.

- samples/face.png: scikit-image's astronaut photo (Eileen Collins, NASA, public domain).
- samples/line.wav: a short line spoken by the bundled Piper voice (CC0).
- samples/talk.mp4: a 2-second video made from the photo with a slow zoom, so video input can be tried too.

Files that already exist are kept. Run: python samples/make_samples.py [--force]
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LINE = "Welcome to the studio. This line was written as text and spoken by the bundled voice."


def make_face(path: Path) -> None:
    from skimage import data
    import cv2

    cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))


def make_line(path: Path) -> None:
    from studio import Studio
    from studio.audio.io import save_audio

    audio, sr = Studio(device="cpu").speak(LINE)
    save_audio(path, audio, sr)


def make_talk(path: Path, face: Path, seconds: float = 2.0, fps: int = 25) -> None:
    import cv2
    import numpy as np

    from studio.video.io import VideoWriter, read_image

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


def main(argv: list[str]) -> int:
    force = "--force" in argv
    face, line, talk = HERE / "face.png", HERE / "line.wav", HERE / "talk.mp4"
    for path, make in ((face, make_face), (line, make_line), (talk, lambda p: make_talk(p, face))):
        if force or not path.exists():
            make(path)
            print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
