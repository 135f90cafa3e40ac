"""The browser app: a Gradio front over ``studio.api`` (no logic of its own beyond I/O and limits).

    studio app [--host 127.0.0.1] [--port 7860] [--share]      or      python -m studio.ui
"""
from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import Optional

import gradio as gr  # this module is only imported to run the app

from ..api import LipSyncOptions, Studio
from ..errors import CancelledError, StudioError
from ..log import get_logger
from ..progress import Progress

log = get_logger("ui")

MAX_UPLOAD_MB = 200
MAX_MEDIA_SECONDS = 300  # longer jobs belong in the CLI or a script
HEAVY_CONCURRENCY = 1  # lip-sync jobs at once per app (one CPU/GPU-heavy job at a time)
LIMITS_TEXT = (f"Uploads up to {MAX_UPLOAD_MB} MB; face videos and audio up to {MAX_MEDIA_SECONDS // 60} minutes. "
               "Everything runs on this machine; nothing is uploaded elsewhere.")


class Jobs:
    """The running job's Progress per browser session, so Cancel can stop exactly that job."""

    def __init__(self):
        self._lock = threading.Lock()
        self._jobs: dict[str, Progress] = {}

    def start(self, session: str, gr_progress) -> Progress:
        def callback(stage, done, total):
            if total:
                gr_progress((done, total), desc=stage, unit="frames" if stage == "lip-sync" else "steps")
            else:
                gr_progress(None, desc=stage)

        progress = Progress(callback=callback)
        with self._lock:
            self._jobs[session] = progress
        return progress

    def cancel(self, session: str) -> bool:
        with self._lock:
            progress = self._jobs.get(session)
        if progress is None:
            return False
        progress.cancel()
        return True

    def finish(self, session: str) -> None:
        with self._lock:
            self._jobs.pop(session, None)


class StudioApp:
    """Holds the Studio, the output folder and the jobs; its methods are the event handlers."""

    def __init__(self, studio: Optional[Studio] = None, workdir: Optional[Path] = None, samples_dir=None):
        self.studio = studio or Studio(device="auto")
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="studio-app-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.samples_dir = Path(samples_dir) if samples_dir else None
        self.jobs = Jobs()

    # ---- helpers --------------------------------------------------------------------------------------------
    def session_dir(self, request) -> Path:
        session = getattr(request, "session_hash", None) or "anonymous"
        path = self.workdir / "sessions" / session
        path.mkdir(parents=True, exist_ok=True)
        return path

    def cleanup_session(self, request: gr.Request) -> None:
        session = getattr(request, "session_hash", None)
        if session:
            self.jobs.cancel(session)
            shutil.rmtree(self.workdir / "sessions" / session, ignore_errors=True)

    @staticmethod
    def _check_duration(path, what: str) -> None:
        from ..errors import InputError
        from ..video.io import probe

        info = probe(path, what)
        if info.duration > MAX_MEDIA_SECONDS:
            raise InputError(f"the {what} is {info.duration:.0f} s long; the app takes up to {MAX_MEDIA_SECONDS} s "
                             "(use the studio command line for longer material)")

    def _run(self, request, gr_progress, job):
        session = getattr(request, "session_hash", None) or "anonymous"
        progress = self.jobs.start(session, gr_progress)
        try:
            return job(progress)
        except CancelledError:
            raise gr.Error("Cancelled: nothing was written.") from None
        except StudioError as e:
            raise gr.Error(str(e)) from None
        finally:
            self.jobs.finish(session)

    def _options(self, engine, model, face_index) -> LipSyncOptions:
        return LipSyncOptions(engine=engine or "auto", model=(model or "").strip() or None,
                              face_index=int(face_index) if face_index not in (None, "") else None)

    # ---- handlers -------------------------------------------------------------------------------------------
    def lipsync(self, face, audio, engine, model, face_index, request: gr.Request, progress=gr.Progress()):
        """face file + audio file -> (video, downloadable file, summary)."""
        if not face:
            raise gr.Error("Upload a face video or photo first.")
        if not audio:
            raise gr.Error("Upload or record the audio to lip-sync to.")

        def job(prog):
            self._check_duration(face, "face video")
            self._check_duration(audio, "audio")
            out = self.session_dir(request) / f"lipsync-{_stamp()}.mp4"
            result = self.studio.lipsync(face, audio, out, options=self._options(engine, model, face_index),
                                         progress=prog)
            return str(result.path), str(result.path), _summary(result)

        return self._run(request, progress, job)

    def say(self, face, text, voice, engine, model, face_index, request: gr.Request, progress=gr.Progress()):
        """face file + text -> (video, downloadable file, summary)."""
        if not face:
            raise gr.Error("Upload a face video or photo first.")

        def job(prog):
            self._check_duration(face, "face video")
            folder = self.session_dir(request)
            stamp = _stamp()
            result = self.studio.say(face, text, folder / f"say-{stamp}.mp4", voice=voice or None,
                                     save_audio=folder / f"say-{stamp}.wav",
                                     options=self._options(engine, model, face_index), progress=prog)
            return str(result.path), str(result.path), _summary(result)

        return self._run(request, progress, job)

    def speak(self, text, voice, rate, request: gr.Request, progress=gr.Progress()):
        """text -> a WAV file (preview of a voice)."""
        from ..audio.io import save_audio
        from ..voice.service import SpeakOptions

        def job(prog):
            audio, sr = self.studio.speak(text, voice=voice or None, options=SpeakOptions(rate=float(rate or 1.0)),
                                          progress=prog)
            return str(save_audio(self.session_dir(request) / f"speak-{_stamp()}.wav", audio, sr))

        return self._run(request, progress, job)

    # ---- voices ---------------------------------------------------------------------------------------------
    def voices_markdown(self) -> str:
        voices = self.studio.list_voices()
        if not voices:
            return "No cloned voices yet. The bundled voice is called **base**."
        return "\n".join(f"- {v.summary()}" for v in voices)

    def _voice_choices(self, selected: str = "base"):
        names = self.studio.voices()
        value = selected if selected in names else names[0]
        return [gr.update(choices=names, value=value), gr.update(choices=names, value=value)]

    def create_voice(self, reference, name, consent, engine, request: gr.Request, progress=gr.Progress()):
        """reference recording + name + consent -> (status, voices list, and the refreshed voice menus)."""
        if not reference:
            raise gr.Error("Upload or record the reference: 10 s to a few minutes of the speaker talking.")

        def job(prog):
            self._check_duration(reference, "reference recording")
            v = self.studio.create_voice(reference, name=(name or "").strip(), consent=consent or "",
                                         engine=engine or "knn", progress=prog)
            return v

        v = self._run(request, progress, job)
        status = f"Created voice **{v.name}** ({v.speech_seconds:.1f} s of speech used)."
        return (status, self.voices_markdown(), *self._voice_choices(v.name))

    def delete_voice(self, name):
        if not name or name == "base":
            raise gr.Error("Choose a cloned voice to delete (the bundled base voice cannot be deleted).")
        try:
            self.studio.delete_voice(name)
        except StudioError as e:
            raise gr.Error(str(e)) from None
        return (f"Deleted voice **{name}**.", self.voices_markdown(), *self._voice_choices())

    def detect_faces(self, face):
        """face file -> (gallery of numbered face crops, a note); index 0 is the largest face."""
        from ..face import detect_faces
        from ..video.io import probe, read_frames

        if not face:
            raise gr.Error("Upload a face video or photo first.")
        try:
            frame = next(read_frames(probe(face, "face"), max_frames=1))
            faces = detect_faces(frame)
        except StudioError as e:
            raise gr.Error(str(e)) from None
        crops = [(frame[f.box[1]:f.box[3], f.box[0]:f.box[2]], f"face {i}") for i, f in enumerate(faces)]
        note = (f"{len(faces)} face(s) found in the first frame; 0 is the largest." if faces
                else "No face found in the first frame.")
        return crops, note

    def train(self, footage, name, minutes, preset, resume, request: gr.Request, progress=gr.Progress()):
        """footage files + a model name -> a summary of the training run (losses and validation numbers)."""
        from ..lipsync.training.service import TrainOptions

        files = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (footage or [])]
        if not resume and not files:
            raise gr.Error("Upload the footage to train on (videos of one person talking), or tick Resume.")

        def job(prog):
            options = TrainOptions(name=(name or "").strip(), footage=tuple(files), resume=bool(resume),
                                   minutes=float(minutes) if minutes else None, device=self.studio.device,
                                   preset=None if preset in (None, "", "auto") else preset)
            return self.studio.train(options, progress=prog).describe()

        return self._run(request, progress, job)

    def models(self) -> str:
        """A markdown list of the actor models."""
        models = self.studio.list_models()
        if not models:
            return "No actor models yet."
        return "\n".join(f"- {m.describe()}" for m in models)

    def cancel(self, request: gr.Request) -> str:
        session = getattr(request, "session_hash", None) or "anonymous"
        return "Cancelling..." if self.jobs.cancel(session) else "Nothing is running."

    # ---- layout ---------------------------------------------------------------------------------------------
    def build(self):
        engines = self.studio.engines()
        voices = self.studio.voices()
        with gr.Blocks(title="studio: voice and lip-sync", delete_cache=(3600, 3600)) as demo:
            gr.Markdown("# studio\nMake a person in a video or photo say new words. " + LIMITS_TEXT)
            with gr.Tab("Lip-sync"):
                with gr.Row():
                    with gr.Column():
                        face = gr.File(label="Face: video or photo", file_types=["image", "video"], type="filepath")
                        with gr.Row():
                            detect_btn = gr.Button("Detect faces", size="sm")
                            face_index = gr.Number(label="Face index (0 = largest)", value=0, precision=0, minimum=0)
                        faces_gallery = gr.Gallery(label="Faces found", columns=4, height=140)
                        faces_note = gr.Markdown()
                        with gr.Row():
                            engine = gr.Dropdown(engines, value="auto", label="Engine")
                            model = gr.Textbox(label="Model (checkpoint name or path, wav2lip engine)", value="")
                        with gr.Tab("From audio"):
                            audio = gr.Audio(label="Audio (upload or record)", sources=["upload", "microphone"],
                                             type="filepath")
                            run_audio = gr.Button("Lip-sync", variant="primary")
                        with gr.Tab("From text"):
                            text = gr.Textbox(label="Text to say", lines=3, value="Hello, I never said this.")
                            voice = gr.Dropdown(voices, value=voices[0], label="Voice", allow_custom_value=True)
                            run_text = gr.Button("Say it", variant="primary")
                        cancel_btn = gr.Button("Cancel", variant="stop")
                        status = gr.Markdown()
                    with gr.Column():
                        video = gr.Video(label="Result", interactive=False)
                        download = gr.File(label="Download", interactive=False)
                        summary = gr.Markdown()
                if self.samples_dir is not None:
                    gr.Examples(
                        examples=[[str(self.samples_dir / "face.png"), str(self.samples_dir / "line.wav")],
                                  [str(self.samples_dir / "talk.mp4"), str(self.samples_dir / "line.wav")]],
                        inputs=[face, audio], label="Examples: click one, then press Lip-sync")
                detect_btn.click(self.detect_faces, [face], [faces_gallery, faces_note], api_name="detect_faces")
                ev_audio = run_audio.click(self.lipsync, [face, audio, engine, model, face_index],
                                           [video, download, summary], api_name="lipsync",
                                           concurrency_limit=HEAVY_CONCURRENCY, concurrency_id="heavy")
                ev_text = run_text.click(self.say, [face, text, voice, engine, model, face_index],
                                         [video, download, summary], api_name="say",
                                         concurrency_limit=HEAVY_CONCURRENCY, concurrency_id="heavy")
                cancel_btn.click(self.cancel, None, status, api_name="cancel")
                del ev_audio, ev_text
            with gr.Tab("Voices"):
                gr.Markdown("Clone a voice from a recording of the speaker (10 s to a few minutes of clear speech, one "
                            "speaker, no music), then use it by name here and in the Lip-sync tab. A consent statement "
                            "(who agreed, and when) is required and is stored with the voice. The base voice and the "
                            "cloned voices speak English.")
                with gr.Row():
                    with gr.Column():
                        ref_audio = gr.Audio(label="Reference (upload or record)", sources=["upload", "microphone"],
                                             type="filepath", elem_id="voice-reference")
                        new_name = gr.Textbox(label="Voice name", placeholder="anna")
                        consent = gr.Textbox(label="Consent statement (required)",
                                             placeholder="Anna Novak agreed on 2026-11-20 to have her voice cloned")
                        voice_engine = gr.Dropdown(self.studio.voice_engines(), value="knn", label="Engine")
                        create_btn = gr.Button("Create voice", variant="primary")
                        voice_status = gr.Markdown()
                    with gr.Column():
                        voices_md = gr.Markdown(self.voices_markdown())
                        with gr.Row():
                            delete_name = gr.Dropdown(voices, value=voices[0], label="Voice to delete", allow_custom_value=True)
                            delete_btn = gr.Button("Delete", variant="stop", size="sm")
                        preview_text = gr.Textbox(label="Speak this", value="Welcome back.", lines=2)
                        preview_voice = gr.Dropdown(voices, value=voices[0], label="Voice", allow_custom_value=True)
                        rate = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="Speaking rate")
                        speak_btn = gr.Button("Speak", variant="primary")
                        preview_audio = gr.Audio(label="Speech", interactive=False, type="filepath")
                refreshed = [voice_status, voices_md, preview_voice, voice]
                create_btn.click(self.create_voice, [ref_audio, new_name, consent, voice_engine], refreshed,
                                 api_name="create_voice", concurrency_limit=HEAVY_CONCURRENCY,
                                 concurrency_id="heavy").then(
                    lambda: gr.update(choices=self.studio.voices()), None, delete_name, api_name=False)
                delete_btn.click(self.delete_voice, [delete_name], refreshed, api_name="delete_voice").then(
                    lambda: gr.update(choices=self.studio.voices(), value="base"), None, delete_name,
                    api_name=False)
                demo.load(self.voices_markdown, None, voices_md, api_name="list_voices")
                # voices made in other sessions (or by the CLI) show up in the menus of a freshly opened page
                demo.load(lambda: [gr.update(choices=self.studio.voices())] * 3, None,
                          [preview_voice, voice, delete_name], api_name=False)
                speak_btn.click(self.speak, [preview_text, preview_voice, rate], preview_audio, api_name="speak",
                                concurrency_limit=2, concurrency_id="speak")
            with gr.Tab("Actor models"):
                gr.Markdown("Train the lip-sync network on footage of one person (a few minutes or more of them "
                            "talking with their own voice). Progress and validation numbers appear below; a stopped "
                            "run continues with Resume. Use a model in the Lip-sync tab: engine wav2lip, model = its "
                            "name.")
                with gr.Row():
                    with gr.Column():
                        footage = gr.File(label="Footage (videos)", file_count="multiple", file_types=["video"],
                                          type="filepath")
                        model_name = gr.Textbox(label="Model name", value="my-actor")
                        with gr.Row():
                            minutes = gr.Number(label="Stop after (minutes)", value=10, minimum=0)
                            preset = gr.Dropdown(["auto", "gpu", "cpu", "debug"], value="auto", label="Preset")
                            resume = gr.Checkbox(label="Resume", value=False)
                        train_btn = gr.Button("Train", variant="primary")
                        train_cancel = gr.Button("Cancel", variant="stop")
                    with gr.Column():
                        train_out = gr.Textbox(label="Result", lines=6, interactive=False)
                        models_btn = gr.Button("List models", size="sm")
                        models_md = gr.Markdown()
                train_btn.click(self.train, [footage, model_name, minutes, preset, resume], train_out,
                                api_name="train", concurrency_limit=HEAVY_CONCURRENCY, concurrency_id="heavy")
                train_cancel.click(self.cancel, None, train_out, api_name=False)
                models_btn.click(self.models, None, models_md, api_name="models")
            demo.unload(self.cleanup_session)
        return demo


def _stamp() -> str:
    import time
    import uuid

    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _summary(result) -> str:
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds_per_stage.items())
    text = (f"**Engine:** {result.engine} · {result.frames} frames at {result.fps:g} fps "
            f"({result.duration:.1f} s) · face in {result.frames_with_face} frames  \n{stages}")
    if result.frames_with_face == 0:
        text += "  \n⚠ No face was found: the video only got the new audio."
    return text


def create_app(device: str = "auto", workdir=None, samples_dir=None):
    """Build the Blocks and the StudioApp behind them (for tests and embedding)."""
    from ..samples import ensure_samples

    if samples_dir is None:
        from ..paths import REPO_ROOT, cache_dir

        repo_samples = REPO_ROOT / "samples"
        samples_dir = repo_samples if (repo_samples / "make_samples.py").exists() else cache_dir() / "samples"
    ensure_samples(samples_dir)
    app = StudioApp(Studio(device=device), workdir=workdir, samples_dir=samples_dir)
    return app, app.build()


def launch(host: str = "127.0.0.1", port: int = 7860, share: bool = False, device: str = "auto",
           prevent_thread_lock: bool = False, workdir=None):
    """Start the app; returns the Blocks (useful with ``prevent_thread_lock``)."""
    app, demo = create_app(device=device, workdir=workdir)
    demo.queue(default_concurrency_limit=2)
    demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=prevent_thread_lock,
                max_file_size=f"{MAX_UPLOAD_MB}mb", allowed_paths=[str(app.workdir), str(app.samples_dir)],
                show_error=True, quiet=prevent_thread_lock)
    return demo
