"""One pass over the person's footage: their mouth exemplars and, when they speak in it, their voice-to-mouth map."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..log import get_logger
from ..types import Speech
from .mouth_library import LibraryBuilder, MouthLibrary, mouth_shape

log = get_logger("visemes")

MIN_SPEECH_FRAMES = 100  # about 4 s of frames with a face and speech before the voice-to-mouth map is fitted


@dataclass
class FollowedFaces:
    """The render's faces for the footage's first frames, tracked while it was studied, and the tracker that
    followed them (positioned after the last of them; None when the render needs no more frames), so a render of
    the same video tracks each frame once. ``faces[k]`` is exactly what a fresh ``FaceTracker`` with the render's
    settings gives for frame k."""

    faces: list
    tracker: object  # studio.face.FaceTracker or None; the render closes it (close() is idempotent)

    def close(self) -> None:
        if self.tracker is not None:
            self.tracker.close()


def study_footage(footage, *, tracker: str = "mediapipe", face_index=None, face_point=None,
                  max_seconds: float = 90.0, keep_faces: int = 0, hwaccel: Optional[str] = None):
    """(MouthLibrary, MouthRegressor or None, report dict, FollowedFaces or None) from the first ``max_seconds``
    of a video. ``keep_faces`` > 0 (the footage is the video about to be rendered, with that many output frames):
    also keep the render's faces of its first ``keep_faces`` frames and the tracker, instead of closing it."""
    from ..audio.io import load_audio
    from ..errors import InputError
    from ..face import FaceTracker
    from ..face.tracking import FaceSmoother
    from ..video.io import probe, read_frames
    from .speech_to_mouth import fit_regressor, load_general_map

    info = probe(footage, "footage")
    if not info.has_video or info.is_image or not info.fps:
        raise InputError(f"footage {info.path} is not a video; give a video of the person (it may be the face video)")
    limit = int(max_seconds * info.fps)
    builder = LibraryBuilder()
    shapes, found = [], []

    kept: list = []
    # one tracking pass, two smoothings of its raw landmarks: the study's (practically none: One-Euro lags a
    # frame, and the timing truth the map learns must not) and, when asked, the render's own
    follow = FaceTracker(info.fps, tracker=tracker, face_index=face_index, face_point=face_point)
    try:
        study_smoother = FaceSmoother(info.fps, follow.smoother.scheme, min_cutoff=1e6)
        for k, frame in enumerate(read_frames(info, hwaccel=hwaccel)):
            if k >= limit:
                break
            lm = follow.follow(frame)
            face = study_smoother(lm, frame.shape)
            if k < keep_faces:
                kept.append(follow.smoother(lm, frame.shape))
            builder.add(frame, face, k)
            found.append(face is not None)
            shapes.append(mouth_shape(face.landmarks, face.scheme) if face is not None else np.zeros(2, np.float32))
    except BaseException:
        follow.close()
        builder.close()
        raise
    # the render needs the tracker only when it has more frames than were studied (then every studied frame
    # was kept, and the tracker is positioned right after the last kept face)
    followed = FollowedFaces(kept, follow if keep_faces > len(found) else None) if keep_faces > 0 else None
    if followed is None or followed.tracker is None:
        follow.close()
    library: MouthLibrary = builder.build()
    report = dict(footage=str(info.path), frames=len(found), exemplars=len(library), usable=library.usable)
    regressor = None
    if library.usable and info.has_audio and len(found) >= MIN_SPEECH_FRAMES:
        try:
            audio, sr = load_audio(info.path, 16000, what="footage")
        except InputError as e:  # silent footage: the rule-based track will drive the exemplars
            log.info("footage has no usable speech (%s)", e)
        else:
            speech = Speech(audio=audio, sample_rate=sr)
            ok = np.array(found) & ((np.arange(len(found)) + 0.5) / info.fps < speech.duration)
            if ok.sum() >= MIN_SPEECH_FRAMES:
                regressor = fit_regressor(speech, info.fps, np.stack(shapes), ok, general=load_general_map())
                report["voice_to_mouth_holdout_corr"] = round(regressor.holdout_corr, 3)
                report["voice_to_mouth_delay_s"] = regressor.delay
                if regressor.holdout_corr < 0.2:  # the voice in the footage does not predict this mouth
                    log.info("voice-to-mouth map too weak (held-out corr %.2f): using the viseme track",
                             regressor.holdout_corr)
                    regressor = None
    report["voice_to_mouth"] = regressor is not None
    log.info("studied %s: %d exemplars (%s), voice-to-mouth map %s", info.path, len(library),
             "usable" if library.usable else "too few or no open mouths",
             f"held-out corr {regressor.holdout_corr:.2f}" if regressor else "not used")
    return library, regressor, report, followed
