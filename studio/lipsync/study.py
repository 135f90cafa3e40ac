"""One pass over the person's footage: their mouth exemplars and, when they speak in it, their voice-to-mouth map."""
from __future__ import annotations

import numpy as np

from ..log import get_logger
from ..types import Speech
from .mouth_library import LibraryBuilder, MouthLibrary, mouth_shape

log = get_logger("visemes")

MIN_SPEECH_FRAMES = 100  # about 4 s of frames with a face and speech before the voice-to-mouth map is fitted


def study_footage(footage, *, tracker: str = "mediapipe", face_index=None, face_point=None,
                  max_seconds: float = 90.0):
    """(MouthLibrary, MouthRegressor or None, report dict) from the first ``max_seconds`` of a video."""
    from ..audio.io import load_audio
    from ..errors import InputError
    from ..face import track_with_frames
    from ..video.io import probe, read_frames
    from .speech_to_mouth import fit_regressor, load_general_map

    info = probe(footage, "footage")
    if not info.has_video or info.is_image or not info.fps:
        raise InputError(f"footage {info.path} is not a video; give a video of the person (it may be the face video)")
    limit = int(max_seconds * info.fps)
    builder = LibraryBuilder()
    shapes, found = [], []

    def frames():
        for k, frame in enumerate(read_frames(info)):
            if k >= limit:
                return
            yield frame

    # the raw landmarks (no One-Euro smoothing, which lags a frame): they are the timing truth the map learns
    for k, (frame, face) in enumerate(track_with_frames(frames(), info.fps, tracker=tracker, face_index=face_index,
                                                        face_point=face_point, min_cutoff=1e6)):
        builder.add(frame, face, k)
        found.append(face is not None)
        shapes.append(mouth_shape(face.landmarks, face.scheme) if face is not None else np.zeros(2, np.float32))
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
    return library, regressor, report
