"""Visemes v2: timing against the sound (synthetic and real clips), the person's own mouth exemplars, the shaded
interior of the photo path."""
from __future__ import annotations

import numpy as np
import pytest

from studio.lipsync.metrics import best_lag, pearson
from studio.types import Speech

from conftest import DATA, GRID

FACES_DEV = DATA / "faces-dev" / "videos"
SR = 16000
FPS = 25.0


def _bursts(onsets, seconds, seed=0):
    """Speech-like bursts (harmonic tone, 120-220 ms syllables) starting at the given times; and the per-frame
    envelope, i.e. when a mouth in sync with them is open."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    env = np.zeros_like(t)
    for on in onsets:
        length = rng.uniform(0.12, 0.22)
        env += np.clip(np.sin(np.pi * (t - on) / length), 0, None) * ((t >= on) & (t < on + length))
    voice = sum(np.sin(2 * np.pi * 160 * k * t) / k for k in range(1, 8))
    audio = (0.25 * env * voice / 2.6 + 0.002 * rng.standard_normal(len(t))).astype(np.float32)
    n = int(seconds * FPS)
    frame_env = np.array([env[int(i / FPS * SR): int((i + 1) / FPS * SR)].mean() for i in range(n)])
    return Speech(audio=audio, sample_rate=SR), frame_env


def _onsets(seconds, seed):
    rng = np.random.default_rng(seed)
    out, t = [], 0.2
    while t < seconds - 0.4:
        out.append(t)
        t += rng.uniform(0.25, 0.6)
    return out


def test_rule_track_is_in_time_with_the_sound():
    from studio.lipsync.phonemes import viseme_track

    speech, env = _bursts(_onsets(6, 1), 6)
    track = viseme_track(speech, FPS, len(env))
    assert abs(best_lag(track["open"], env, 10)) <= 1  # the mouth neither leads nor trails the sound
    assert pearson(track["open"], env) > 0.7


@pytest.mark.parametrize("footage_delay", [0.0, 0.32])
def test_voice_to_mouth_map_learns_the_timing(footage_delay):
    """The map is fitted on 'footage' whose mouth follows its sound after footage_delay; it must predict a new
    line's mouth with the same timing (lag 0 against a mouth that follows the new sound the same way)."""
    from studio.lipsync.speech_to_mouth import fit_regressor

    shift = int(round(footage_delay * FPS))
    speech, env = _bursts(_onsets(14, 2), 14, seed=2)
    mouth = np.roll(env, shift)
    targets = np.stack([0.05 + 0.3 * mouth, 0.9 + 0.05 * mouth], 1).astype(np.float32)
    reg = fit_regressor(speech, FPS, targets, np.ones(len(env), bool))
    # a mouth 0.32 s behind its sound is outside the centred +-0.2 s window: the map must move the window
    assert reg.holdout_corr > 0.8 and (reg.delay <= -0.16 if footage_delay > 0.2 else reg.delay == 0.0)
    new, new_env = _bursts(_onsets(6, 3), 6, seed=3)
    predicted = reg.predict_speech(new, FPS, len(new_env))[:, 0]
    truth = np.roll(new_env, shift)
    assert best_lag(predicted, truth, 10) == 0 and pearson(predicted, truth) > 0.8


def _raw_opening(path, max_frames=None):
    from studio.face.landmarks import mouth_opening
    from studio.face.tracking import track_frames
    from studio.video.io import probe, read_frames

    info = probe(path)
    frames = (f for k, f in enumerate(read_frames(info)) if max_frames is None or k < max_frames)
    out = [np.nan if f is None else mouth_opening(f.landmarks) for f in track_frames(frames, info.fps, min_cutoff=1e6)]
    o = np.array(out)
    return np.where(np.isnan(o), np.nanmean(o), o), info.fps


@pytest.mark.skipif(not (GRID / "clips").is_dir(), reason="../shared/data/grid-s1 is not present")
def test_rule_track_in_time_on_real_grid_clips():
    """Held-out GRID s1 clips, their real audio: the correlation between the drawn opening and the real mouth,
    summed over the clips, peaks within a frame of lag 0 (raw landmarks: no tracker smoothing lag)."""
    from studio.audio.io import load_audio
    from studio.lipsync.phonemes import viseme_track

    clips = sorted((GRID / "clips").glob("*.mp4"))[400:403]
    lags = range(-10, 11)
    total = np.zeros(len(lags))
    for clip in clips:
        real, fps = _raw_opening(clip)
        audio, sr = load_audio(clip, 16000)
        drawn = viseme_track(Speech(audio, sr), fps, len(real))["open"]
        total += [pearson(drawn[k:], real[:len(real) - k]) if k >= 0 else pearson(drawn[:k], real[-k:]) for k in lags]
    assert abs(lags[int(np.argmax(total))]) <= 1


@pytest.mark.skipif(not (FACES_DEV / "styletalk_feifeili_clip1.mp4").is_file(), reason="faces-dev is not present")
def test_voice_to_mouth_map_in_time_on_a_real_clip(tmp_path):
    """A real person (faces-dev): the map learned from the first 70 % of 10 s (with the general map, as a render
    does), driven by the last 30 %'s own sound, follows the real mouth with |lag| <= 1 frame. The lag is searched
    within +-4 frames: on 3 s of speech a shift by a whole syllable (6-9 frames) can match as well by chance."""
    from studio.audio.io import load_audio
    from studio.lipsync.speech_to_mouth import fit_regressor, load_general_map

    clip = FACES_DEV / "styletalk_feifeili_clip1.mp4"
    real, fps = _raw_opening(clip)
    audio, sr = load_audio(clip, 16000)
    n = len(real)
    cut = int(0.7 * n)
    train = Speech(audio[: int(cut / fps * sr)], sr)
    targets = np.stack([real[:cut], np.zeros(cut)], 1).astype(np.float32)
    reg = fit_regressor(train, fps, targets, np.ones(cut, bool), general=load_general_map())
    test = Speech(audio[int(cut / fps * sr): int(n / fps * sr)], sr)
    predicted = reg.predict_speech(test, fps, n - cut)[:, 0]
    assert abs(best_lag(predicted, real[cut:], 4)) <= 1
    assert pearson(predicted, real[cut:]) > 0.2  # 3 s of a real mouth: modest (0.42 here), but the lag is clear


def _library_from(image, face, n=40):
    """A library of one picture with made-up shapes spread over opening 0..0.3 (paste geometry, choice)."""
    from studio.lipsync.mouth_library import LibraryBuilder

    builder = LibraryBuilder()
    for k in range(n):
        builder.add(image, face, k)
    lib = builder.build()
    lib.shapes[:, 0] = np.linspace(0.0, 0.3, n)
    return lib


def test_exemplar_pasted_back_onto_its_own_face_is_the_face(astronaut):
    from studio.face import detect_faces
    from studio.lipsync.blend import blend
    from studio.lipsync.mouth_library import mouth_mask, paste

    face = detect_faces(astronaut)[0]
    lib = _library_from(astronaut, face, n=2)
    patch = paste(astronaut, face, lib, 0, mouth_mask(lib))
    out = blend(astronaut, patch, face)
    lips = face.landmarks[[61, 291, 13, 14, 17]]
    (x1, y1), (x2, y2) = lips.min(0).astype(int), lips.max(0).astype(int)
    diff = np.abs(out[y1:y2, x1:x2].astype(int) - astronaut[y1:y2, x1:x2].astype(int)).mean()
    assert patch.mask.max() > 0.9 and diff < 6.0  # lands where it came from (a wrong alignment differs by tens)


def test_picker_matches_the_shape_and_follows_the_footage(astronaut):
    from studio.face import detect_faces
    from studio.lipsync.mouth_library import ExemplarPicker

    face = detect_faces(astronaut)[0]
    lib = _library_from(astronaut, face)
    lib.shapes[:, 1] = 1.0
    picker = ExemplarPicker(lib)
    k = picker.pick(np.array([0.2, 1.0], np.float32), 0.0, t=0)
    assert abs(lib.shapes[k, 0] - 0.2) < 0.01
    # the next frame wants almost the same: continuing the footage's own sequence (k + 1) wins over a jump
    assert picker.pick(np.array([0.2, 1.0], np.float32), 0.0, t=1) == k + 1


def test_closed_mouth_keeps_own_pixels_and_open_mouth_uses_exemplars(astronaut):
    from studio.face import detect_faces
    from studio.lipsync.visemes import VisemeEngine

    from studio.lipsync.mouth_library import mouth_shape

    face = detect_faces(astronaut)[0]
    own = float(mouth_shape(face.landmarks, face.scheme)[0])
    engine = VisemeEngine()
    engine.library = _library_from(astronaut, face)
    engine.library.shapes[:, 0] += own  # the library's closed mouths are as closed as the astronaut's
    speech, _ = _bursts([0.3], 1.0)
    engine.prepare(speech, FPS, 25)
    engine.targets[:] = (own, 0.9)  # closed, like the astronaut's own mouth
    assert engine.render([astronaut], [face], [3]) == [None]
    engine.targets[:] = (own + 0.25, 0.9)
    assert engine.render([astronaut], [face], [4])[0] is not None


def test_photo_interior_is_shaded_in_the_persons_colours(astronaut):
    from studio.face.landmarks import lip_indices
    from studio.lipsync.visemes import _person_colours, render_mouth, target_displacements

    from studio.face import detect_faces

    face = detect_faces(astronaut)[0]
    params = np.array([0.95, 0, 0.15, 0, 0], np.float32)
    v2 = render_mouth(astronaut, face, params, shaded=True)
    x1, y1, x2, y2 = v2.box
    _, moves, _ = target_displacements(face, params)
    ids = lip_indices(face.scheme)
    top = face.landmarks[13] + moves[ids.index(13)] - (x1, y1)
    bottom = face.landmarks[14] + moves[ids.index(14)] - (x1, y1)
    column = v2.image[int(top[1]) + 2: int(bottom[1]) - 1, int(round(top[0]))].astype(float)
    lip, teeth = _person_colours(astronaut[y1:y2, x1:x2], face, (x1, y1))
    bright, dark = column[column.sum(1).argmax()], column[column.sum(1).argmin()]
    # the upper teeth, in the colour derived from the picture (shaded: a little darker, same balance)
    assert 0.65 < bright.sum() / teeth.sum() < 1.05 and np.abs(bright / bright.sum() - teeth / teeth.sum()).max() < 0.02
    assert dark.sum() < 0.35 * bright.sum() and dark[0] > dark[2] + 3  # a cavity in the lips' (red) hue, not black
    assert lip[0] > lip[2] and teeth.min() > 120


def test_viterbi_plan_follows_the_footage_and_continues_across_batches(astronaut):
    """Wanted shapes that are a stretch of the footage itself: the plan is that stretch, frame for frame, and the
    next batch continues it (no jump back to a merely similar exemplar)."""
    from studio.face import detect_faces
    from studio.lipsync.mouth_library import ExemplarPicker

    face = detect_faces(astronaut)[0]
    lib = _library_from(astronaut, face)
    rng = np.random.default_rng(0)
    lib.shapes[:, 0] = np.abs(np.sin(np.arange(len(lib)) / 3.0)) * 0.3  # a mouth opening and closing
    lib.shapes[:, 1] = 1.0 + 0.05 * rng.standard_normal(len(lib))
    picker = ExemplarPicker(lib)
    first = picker.plan(lib.shapes[5:15], np.zeros(10), t0=0)
    assert first == list(range(5, 15))
    nearly = lib.shapes[15:20] + np.array([0.004, 0.0], np.float32)  # slightly off: continuing is still cheapest
    assert picker.plan(nearly, np.zeros(5), t0=10) == list(range(15, 20))


def test_general_map_ships_and_follows_a_held_out_grid_clip():
    """The general voice-to-mouth map (photos, footage without speech) is bundled, and on a GRID clip it was not
    fitted on (410: the fitting uses clips below 400) its opening follows the real mouth at lag 0."""
    from studio.lipsync.speech_to_mouth import load_general_map

    general = load_general_map()
    assert general is not None and general.meta["frames"] > 5000
    if not (GRID / "clips").is_dir():
        pytest.skip("../shared/data/grid-s1 is not present")
    from studio.audio.io import load_audio

    clip = sorted((GRID / "clips").glob("*.mp4"))[410]
    real, fps = _raw_opening(clip)
    audio, sr = load_audio(clip, 16000)
    opened = general.openness(Speech(audio, sr), fps, len(real))
    assert abs(best_lag(opened, real, 10)) <= 1 and pearson(opened, real) > 0.4
    assert opened.min() >= 0 and opened.max() <= 1 and opened.max() - opened.min() > 0.5


def test_photo_opening_comes_from_the_general_map(astronaut):
    """No footage (a photo): the warp's opening is the general map's, silent after the speech."""
    from studio.lipsync.speech_to_mouth import load_general_map
    from studio.lipsync.visemes import VisemeEngine

    speech, _ = _bursts(_onsets(3, 4), 3, seed=4)
    engine = VisemeEngine()
    engine.prepare(speech, FPS, 100)  # 4 s of frames for 3 s of speech
    expected = load_general_map().openness(speech, FPS, 100)
    assert "general" in engine.track.source and engine.targets is None
    assert np.allclose(engine.track["open"][:70], expected[:70]) and engine.track["open"][80:].max() == 0.0


def test_footage_without_speech_maps_the_general_map_onto_the_persons_range(astronaut):
    from studio.face import detect_faces
    from studio.lipsync.visemes import VisemeEngine

    face = detect_faces(astronaut)[0]
    engine = VisemeEngine()
    engine.library = _library_from(astronaut, face)
    engine.library.shapes[:, 1] = np.linspace(0.8, 1.0, len(engine.library))
    speech, _ = _bursts(_onsets(3, 5), 3, seed=5)
    engine.prepare(speech, FPS, 75)
    lo, hi = engine.library.shapes[:, 0].min(), engine.library.shapes[:, 0].max()
    assert engine.targets.shape == (75, 2)
    assert lo - 1e-6 <= engine.targets[:, 0].min() and engine.targets[:, 0].max() <= hi + 1e-6
    assert engine.targets[:, 0].std() > 0.03  # it moves over the person's range, not stuck at one shape
