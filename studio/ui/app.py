"""The browser app: a Gradio front over ``studio.api`` (no logic of its own beyond I/O and limits).

    studio app [--host 127.0.0.1] [--port 7860] [--share]      or      python -m studio.ui
"""
from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
from dataclasses import replace
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


def redact_paths(text: str, uploads=()) -> str:
    """A message for the browser: every server path becomes its file name (an upload's name is the name the user
    gave it), so no message tells a client where files live on the server or which paths exist."""
    for path in uploads:
        if path:
            text = text.replace(str(path), Path(str(path)).name)
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1), text)


# an absolute path (two or more parts), up to a space, quote or closing bracket; group 1 is its last part
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s'\"()\[\]{},;:/]+/)+([^\s'\"()\[\]{},;:/]*)")


def problem(message: str) -> gr.Error:
    """A user's mistake, shown as a toast; the app log gets one line for it, not a traceback."""
    return gr.Error(message, print_exception=False)


def user_error(e: BaseException, uploads=()) -> gr.Error:
    """The gr.Error shown for a user's mistake: its message without server paths, and no traceback in the log."""
    return problem(redact_paths(str(e), uploads))


class Jobs:
    """The running job's Progress per browser session, so Cancel can stop exactly that job."""

    def __init__(self):
        self._lock = threading.Condition()
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
            self._lock.notify_all()

    def cancel_all(self) -> int:
        with self._lock:
            running = list(self._jobs.values())
        for progress in running:
            progress.cancel()
        return len(running)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job runs (True) or ``timeout`` seconds pass (False)."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._jobs, timeout)


class StudioApp:
    """Holds the Studio, the output folder and the jobs; its methods are the event handlers."""

    def __init__(self, studio: Optional[Studio] = None, workdir: Optional[Path] = None, samples_dir=None):
        # models by name only: a client must never make the server load a file of its choosing
        self.studio = studio or Studio(device="auto", model_paths=False)
        self.own_workdir = workdir is None  # a folder the app made is removed when the app stops
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

    def shutdown(self, grace_seconds: float = 20.0) -> None:
        """Stop the app's work: cancel every job, give them ``grace_seconds`` to clean up, then end any ffmpeg
        left and remove the app's temporary folder (SIGTERM, SIGHUP and Ctrl-C all come here)."""
        from ..video.io import abort_all

        if self.jobs.cancel_all():
            log.info("stopping: cancelled the running jobs")
            if not self.jobs.wait_idle(grace_seconds):
                log.warning("stopping: jobs still running after %.0f s; ending their ffmpeg processes", grace_seconds)
        abort_all()
        if self.own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

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

    def _run(self, request, gr_progress, job, uploads=()):
        session = getattr(request, "session_hash", None) or "anonymous"
        progress = self.jobs.start(session, gr_progress)
        try:
            return job(progress)
        except CancelledError:
            raise problem("Cancelled: nothing was written.") from None
        except StudioError as e:
            log.info("job failed: %s", redact_paths(str(e), uploads))
            raise user_error(e, uploads) from None
        finally:
            self.jobs.finish(session)

    def _options(self, engine, model, face_index) -> LipSyncOptions:
        return LipSyncOptions(engine=engine or "auto", model=self._model_name(model),
                              face_index=int(face_index) if face_index not in (None, "") else None)

    def _model_name(self, model) -> Optional[str]:
        """The model menu's choice; only installed names pass (never a path)."""
        name = str(model or "").strip()
        if not name:
            return None
        installed = self.studio.lipsync_models(ready_only=False)  # an unfinished one gets the engine's "resume it"
        if name not in installed:
            raise problem(f"Unknown model: choose one of the installed models from the list "
                           f"({', '.join(installed) or 'none installed'}); files cannot be given here.")
        return name

    def model_choices(self):
        """The model menu: none (the engine's default) or an installed checkpoint or actor model, by name."""
        return [("(none: the engine's default)", ""), *[(n, n) for n in self.studio.lipsync_models()]]

    # ---- handlers -------------------------------------------------------------------------------------------
    def lipsync(self, face, audio, engine, model, face_index, personalize=False, budget_minutes=5.0, consent="",
                request: gr.Request = None, progress=gr.Progress()):
        """face file + audio file -> (video, downloadable file, summary). With ``personalize``: a model is first
        fine-tuned on the face video's own footage for ``budget_minutes`` (cached), which needs ``consent``."""
        if not face:
            raise problem("Upload a face video or photo first.")
        if not audio:
            raise problem("Upload or record the audio to lip-sync to.")

        options = self._options(engine, model, face_index)
        if personalize:
            options = replace(options, personalize=True, budget_minutes=float(budget_minutes or 5.0),
                              consent=(consent or "").strip() or None)

        def job(prog):
            self._check_duration(face, "face video")
            self._check_duration(audio, "audio")
            out = self.session_dir(request) / f"lipsync-{_stamp()}.mp4"
            result = self.studio.lipsync(face, audio, out, options=options, progress=prog)
            return str(result.path), str(result.path), _summary(result)

        return self._run(request, progress, job, uploads=(face, audio))

    def say(self, face, text, voice, engine, model, face_index, request: gr.Request, progress=gr.Progress()):
        """face file + text -> (video, downloadable file, summary)."""
        if not face:
            raise problem("Upload a face video or photo first.")
        options = self._options(engine, model, face_index)

        def job(prog):
            self._check_duration(face, "face video")
            folder = self.session_dir(request)
            stamp = _stamp()
            result = self.studio.say(face, text, folder / f"say-{stamp}.mp4", voice=voice or None,
                                     save_audio=folder / f"say-{stamp}.wav", options=options, progress=prog)
            return str(result.path), str(result.path), _summary(result)

        return self._run(request, progress, job, uploads=(face,))

    def speak(self, text, voice, rate, language="en", request: gr.Request = None, progress=gr.Progress()):
        """text -> a WAV file (preview of a voice), in ``language`` (en, es, fr, it, pt)."""
        from ..audio.io import save_audio
        from ..voice.service import SpeakOptions

        def job(prog):
            options = SpeakOptions(rate=float(rate or 1.0), language=language or "en")
            audio, sr = self.studio.speak(text, voice=voice or None, options=options, progress=prog)
            return str(save_audio(self.session_dir(request) / f"speak-{_stamp()}.wav", audio, sr))

        return self._run(request, progress, job)

    # ---- dubbing --------------------------------------------------------------------------------------------
    def _dub_job_dir(self, request) -> Path:
        return self.session_dir(request) / "dubjob"  # content-hashed, so one folder serves every dub of a session

    def _dub_outputs(self, result):
        table = self.studio.dub_table(result)
        fit = result.fit
        summary = (f"**{fit.get('fit', 0)}/{fit.get('lines', len(table))} lines fit** their slots · language "
                   f"{result.language} · {result.seconds:.1f} s · this run synthesized {result.work['synthesized']} "
                   f"line(s) and re-rendered {result.work['spans_rendered']} span(s)")
        if any(row[7] == "NO" for row in table):
            summary += "  \n⚠ Lines marked NO run past their slot (overflow, in seconds): shorten their text."
        return (str(result.path), [str(result.path), str(result.srt_path), str(result.vtt_path)], table, summary)

    def dub(self, video, subs, target, voice, consent, engine, request: gr.Request, progress=gr.Progress()):
        """video + subtitles (or none: transcribed) + target language -> (video, [MP4, SRT, VTT], per-line table,
        summary)."""
        if not video:
            raise problem("Upload the video to dub first.")
        if not subs and not target:
            raise problem("Upload its subtitles (SRT/WebVTT) or choose a language to dub into.")
        options = self._options(engine, None, None)

        def job(prog):
            self._check_duration(video, "video")
            out = self.session_dir(request) / f"dub-{_stamp()}.mp4"
            return self.studio.dub(video, subs=subs or None, out=out, target_lang=target or None,
                                   voice=voice or None, consent=(consent or "").strip() or None,
                                   job_dir=str(self._dub_job_dir(request)), lipsync=options, progress=prog)

        return self._dub_outputs(self._run(request, progress, job, uploads=(video, subs)))

    def dub_line(self, line, text, request: gr.Request, progress=gr.Progress()):
        """line number + its new text (in the dub's language) -> the outputs of :meth:`dub`, redone for that line
        only (from the job's cache)."""
        if line in (None, ""):
            raise problem("Choose the line to change (click its row in the table).")
        folder = self._dub_job_dir(request)
        if not (folder / "request.json").is_file():
            raise problem("Dub a video first; then a line of it can be changed and rendered again.")

        def job(prog):
            return self.studio.dub_edit_line(folder, int(line), text or "", progress=prog)

        return self._dub_outputs(self._run(request, progress, job))

    @staticmethod
    def pick_dub_line(table, evt: gr.SelectData):
        """A click on a row of the per-line table puts its number and dubbed text in the edit fields."""
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        values = table.values.tolist() if hasattr(table, "values") else table
        return values[row][0], values[row][-1]

    # ---- voices ---------------------------------------------------------------------------------------------
    def voice_languages(self, voice, language="en"):
        """The Language menu for a voice: every installed language for the base voice, the voice's own otherwise."""
        choices = _language_choices()
        if voice and voice != "base":
            spoken = next((v.languages for v in self.studio.list_voices() if v.name == voice), None)
            if spoken is not None:
                choices = [c for c in choices if c[1] in spoken]
        codes = [c[1] for c in choices]
        return gr.update(choices=choices, value=language if language in codes else (codes or ["en"])[0])

    def voices_markdown(self) -> str:
        voices = self.studio.list_voices()
        if not voices:
            return "No cloned voices yet. The bundled voice is called **base**."
        return "\n".join(f"- {v.summary()}" for v in voices)

    def _voice_choices(self, selected: str = "base"):
        names = self.studio.voices()
        value = selected if selected in names else names[0]
        return [gr.update(choices=names, value=value), gr.update(choices=names, value=value)]

    def deletable_voices(self, selected: Optional[str] = None):
        """The "Voice to delete" menu: cloned voices only (the base voice cannot be deleted), none chosen by
        default so that nothing is deleted by one click."""
        names = [v.name for v in self.studio.list_voices()]
        return gr.update(choices=names, value=selected if selected in names else None)

    def create_voice(self, reference, name, consent, engine, covers_marked=False, request: gr.Request = None,
                     progress=gr.Progress()):
        """reference recording + name + consent -> (status, voices list, and the refreshed voice menus)."""
        if not reference:
            raise problem("Upload or record the reference: 10 s to a few minutes of the speaker talking.")

        def job(prog):
            self._check_duration(reference, "reference recording")
            v = self.studio.create_voice(reference, name=(name or "").strip(), consent=consent or "",
                                         engine=engine or "knn", progress=prog,
                                         consent_covers_marked=bool(covers_marked))
            return v

        v = self._run(request, progress, job, uploads=(reference,))
        status = f"Created voice **{v.name}** ({v.speech_seconds:.1f} s of speech used)."
        return (status, self.voices_markdown(), *self._voice_choices(v.name))

    def delete_voice(self, name):
        if not name or name == "base":
            raise problem("Choose a cloned voice to delete (the bundled base voice cannot be deleted).")
        try:
            self.studio.delete_voice(name)
        except StudioError as e:
            raise user_error(e) from None
        return (f"Deleted voice **{name}**.", self.voices_markdown(), *self._voice_choices())

    def detect_faces(self, face):
        """face file -> (gallery of numbered face crops, a note); index 0 is the largest face."""
        from ..face import detect_faces
        from ..video.io import probe, read_frames

        if not face:
            raise problem("Upload a face video or photo first.")
        try:
            frame = next(read_frames(probe(face, "face"), max_frames=1))
            faces = detect_faces(frame)
        except StudioError as e:
            raise user_error(e, (face,)) from None
        crops = [(face_thumbnail(frame, f, i), f"face {i}") for i, f in enumerate(faces)]
        note = (f"{len(faces)} face(s) found in the first frame; 0 is the largest." if faces
                else "No face found in the first frame.")
        return crops, note

    def train(self, footage, name, minutes, preset, resume, consent, covers_marked=False, request: gr.Request = None,
              progress=gr.Progress()):
        """footage files + a model name -> a summary of the training run (losses and validation numbers)."""
        from ..lipsync.training.service import TrainOptions

        files = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (footage or [])]
        if not resume and not files:
            raise problem("Upload the footage to train on (videos of one person talking), or tick Resume.")

        def job(prog):
            options = TrainOptions(name=(name or "").strip(), footage=tuple(files), resume=bool(resume),
                                   minutes=float(minutes) if minutes else None, device=self.studio.device,
                                   preset=None if preset in (None, "", "auto") else preset,
                                   consent=(consent or "").strip() or None,
                                   consent_covers_marked=bool(covers_marked))
            return redact_paths(self.studio.train(options, progress=prog).describe(), files)

        return self._run(request, progress, job, uploads=files)

    def models(self) -> str:
        """A markdown list of the actor models (by name; no server paths)."""
        models = self.studio.list_models()
        if not models:
            return "No actor models yet."
        return "\n".join(f"- {redact_paths(m.describe())}" for m in models)

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
                        faces_gallery = gr.Gallery(label="Faces found", columns=6, height="auto", object_fit="contain",
                                                   allow_preview=False, preview=False)
                        faces_note = gr.Markdown()
                        with gr.Row():
                            engine = gr.Dropdown(engines, value="auto", label="Engine")
                            # custom values reach the handler, which accepts installed names only and answers
                            # without echoing what it was given (Gradio's own check would echo a server path)
                            model = gr.Dropdown(self.model_choices(), value="", label="Model (wav2lip engine)",
                                                info="installed checkpoints and actor models",
                                                allow_custom_value=True)
                        with gr.Tab("From audio"):
                            audio = gr.Audio(label="Audio (upload or record)", sources=["upload", "microphone"],
                                             type="filepath")
                            with gr.Accordion("Personalise from this video", open=False):
                                gr.Markdown("A model is first fine-tuned on the face video's own stretches of face "
                                            "and speech (10-60 s of the person talking), then used for the render; "
                                            "a second render of the same video starts at once. Too little footage "
                                            "or time: the weights-free engine is used, and the summary says why.")
                                personalize = gr.Checkbox(label="Personalise from this video", value=False)
                                budget = gr.Slider(1, 30, value=5, step=1, label="Budget (minutes)")
                                personal_consent = gr.Textbox(
                                    label="Consent statement (required to personalise)", value="",
                                    placeholder="e.g. Anna Novak agreed on 2026-11-20 to a lip-sync model of her face")
                            run_audio = gr.Button("Lip-sync", variant="primary")
                        with gr.Tab("From text"):
                            text = gr.Textbox(label="Text to say", lines=3, value="Hello, I never said this.")
                            voice = gr.Dropdown(voices, value=voices[0], label="Voice", allow_custom_value=True)
                            run_text = gr.Button("Say it", variant="primary")
                        cancel_btn = gr.Button("Cancel", variant="stop")
                        status = gr.Markdown()
                    with gr.Column():
                        job_status = gr.Markdown(elem_id="lipsync-status")  # progress and errors show here
                        video = gr.Video(label="Result", interactive=False)
                        download = gr.File(label="Download", interactive=False)
                        summary = gr.Markdown()
                if self.samples_dir is not None:
                    gr.Examples(
                        examples=[[str(self.samples_dir / "face.png"), str(self.samples_dir / "line.wav")],
                                  [str(self.samples_dir / "talk.mp4"), str(self.samples_dir / "line.wav")]],
                        inputs=[face, audio], label="Examples: click one, then press Lip-sync")
                detect_btn.click(self.detect_faces, [face], [faces_gallery, faces_note], api_name="detect_faces")
                # progress and error badges go on the status line only, so a failed job leaves the result panels
                # as they were instead of stamping "Error" on them
                ev_audio = run_audio.click(self.lipsync, [face, audio, engine, model, face_index, personalize,
                                                          budget, personal_consent],
                                           [video, download, summary], api_name="lipsync",
                                           concurrency_limit=HEAVY_CONCURRENCY, concurrency_id="heavy",
                                           show_progress_on=[job_status])
                ev_text = run_text.click(self.say, [face, text, voice, engine, model, face_index],
                                         [video, download, summary], api_name="say",
                                         concurrency_limit=HEAVY_CONCURRENCY, concurrency_id="heavy",
                                         show_progress_on=[job_status])
                demo.load(lambda: gr.update(choices=self.model_choices()), None, model, api_name=False)
                cancel_btn.click(self.cancel, None, status, api_name="cancel")
                del ev_audio, ev_text
            with gr.Tab("Dub"):
                gr.Markdown("Dub a video into another language: upload it with its subtitles (SRT or WebVTT, timed "
                            "lines; `NAME: text` names a speaker), a plain script (.txt, one line per cue: timed against the "
                            "speech), or with none to have its speech transcribed (its language detected). "
                            "The new speech is fitted to each line's slot and the speaking face is lip-synced to it. "
                            "Change one line afterwards: click its row, edit the text, render it again (only that "
                            "line is redone).")
                with gr.Row():
                    with gr.Column():
                        dub_video = gr.File(label="Video", file_types=["video"], type="filepath")
                        dub_subs = gr.File(label="Subtitles (SRT/WebVTT) or a script (.txt, one line per cue; optional)",
                                           file_types=[".srt", ".vtt", ".txt"],
                                           type="filepath")
                        with gr.Row():
                            dub_target = gr.Dropdown([("(the subtitles' language)", ""), *_language_choices()],
                                                     value="", label="Dub into")
                            dub_voice = gr.Dropdown(["base", "auto", *voices[1:]], value="base", label="Voice",
                                                    info="auto: each speaker's own voice, cloned from the video",
                                                    allow_custom_value=True)
                        dub_consent = gr.Textbox(label="Consent statement (for voice auto)",
                                                 info="who agreed to have their voice cloned, and when")
                        dub_engine = gr.Dropdown(engines, value="auto", label="Lip-sync engine")
                        dub_btn = gr.Button("Dub", variant="primary")
                        dub_cancel = gr.Button("Cancel", variant="stop")
                    with gr.Column():
                        dub_status = gr.Markdown(elem_id="dub-status")
                        dub_result = gr.Video(label="Dubbed video", interactive=False)
                        dub_files = gr.File(label="Download: video, SRT, VTT", file_count="multiple",
                                            interactive=False)
                        dub_summary = gr.Markdown()
                dub_table = gr.Dataframe(headers=["line", "speaker", "slot start (s)", "slot (s)", "produced (s)",
                                                  "stretch", "overflow (s)", "fits", "dubbed text"],
                                         interactive=False, label="Lines: timing fit (click a row to edit it)",
                                         wrap=True)
                with gr.Row():
                    edit_line = gr.Number(label="Line", precision=0, minimum=1, scale=1)
                    edit_text = gr.Textbox(label="New text of the line (in the dub's language)", scale=5)
                    edit_btn = gr.Button("Render this line again", scale=1)
                dub_outputs = [dub_result, dub_files, dub_table, dub_summary]
                dub_btn.click(self.dub, [dub_video, dub_subs, dub_target, dub_voice, dub_consent, dub_engine],
                              dub_outputs, api_name="dub", concurrency_limit=HEAVY_CONCURRENCY,
                              concurrency_id="heavy", show_progress_on=[dub_status])
                edit_btn.click(self.dub_line, [edit_line, edit_text], dub_outputs, api_name="dub_line",
                               concurrency_limit=HEAVY_CONCURRENCY, concurrency_id="heavy",
                               show_progress_on=[dub_status])
                dub_table.select(self.pick_dub_line, [dub_table], [edit_line, edit_text], api_name=False)
                dub_cancel.click(self.cancel, None, dub_status, api_name=False)
            with gr.Tab("Voices"):
                gr.Markdown("Clone a voice from a recording of the speaker (10 s to a few minutes of clear speech, one "
                            "speaker, no music), then use it by name here and in the Lip-sync tab. A consent statement "
                            "(who agreed, and when) is required and is stored with the voice. The base voice and "
                            "knn/global voices speak English; kokoro and hybrid voices (a Kokoro voice fitted to the "
                            "speaker, a few CPU minutes to make) speak English, Spanish, French, Italian and "
                            "Portuguese.")
                with gr.Row():
                    with gr.Column():
                        ref_audio = gr.Audio(label="Reference (upload or record)", sources=["upload", "microphone"],
                                             type="filepath", elem_id="voice-reference")
                        new_name = gr.Textbox(label="Voice name", placeholder="anna")
                        consent = gr.Textbox(label="Consent statement (required)",
                                             info="who agreed to have their voice cloned, and when: at least 10 characters",
                                             placeholder="Anna Novak agreed on 2026-11-20 to have her voice cloned")
                        voice_engine = gr.Dropdown(self.studio.voice_engines(), value=self.studio.voice_engines()[0],
                                                   label="Engine")
                        voice_covers_marked = gr.Checkbox(
                            label="The consent covers audio that carries an AI mark",
                            info="speech made by this studio (or marked with Perth) is refused unless ticked",
                            value=False)
                        create_btn = gr.Button("Create voice", variant="primary")
                        voice_status = gr.Markdown()
                    with gr.Column():
                        voices_md = gr.Markdown(self.voices_markdown())
                        with gr.Row():
                            # cloned voices only, none chosen; filled when the page opens (custom values reach
                            # the handler so that an API client can name a voice made after the page was built)
                            delete_name = gr.Dropdown([], value=None, label="Voice to delete", allow_custom_value=True)
                            delete_btn = gr.Button("Delete", variant="stop", size="sm")
                        preview_text = gr.Textbox(label="Speak this", value="Welcome back.", lines=2)
                        preview_voice = gr.Dropdown(voices, value=voices[0], label="Voice", allow_custom_value=True)
                        rate = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="Speaking rate")
                        preview_language = gr.Dropdown(_language_choices(), value="en", label="Language")
                        speak_btn = gr.Button("Speak", variant="primary")
                        preview_audio = gr.Audio(label="Speech", interactive=False, type="filepath")
                refreshed = [voice_status, voices_md, preview_voice, voice]
                # progress and errors on the status line only: a failed creation leaves the menus usable
                create_btn.click(self.create_voice, [ref_audio, new_name, consent, voice_engine, voice_covers_marked],
                                 refreshed,
                                 api_name="create_voice", concurrency_limit=HEAVY_CONCURRENCY,
                                 concurrency_id="heavy", show_progress_on=[voice_status]).success(
                    self.deletable_voices, None, delete_name, api_name=False)
                delete_btn.click(self.delete_voice, [delete_name], refreshed, api_name="delete_voice",
                                 show_progress_on=[voice_status]).success(
                    self.deletable_voices, None, delete_name, api_name=False)
                demo.load(self.voices_markdown, None, voices_md, api_name="list_voices")
                # voices made in other sessions (or by the CLI) show up in the menus of a freshly opened page
                demo.load(lambda: [gr.update(choices=self.studio.voices())] * 2 + [self.deletable_voices()], None,
                          [preview_voice, voice, delete_name], api_name=False)
                # the languages the chosen voice speaks (a kokoro/hybrid voice: all of Kokoro's; knn: English)
                preview_voice.change(self.voice_languages, [preview_voice, preview_language], preview_language,
                                     api_name=False)
                speak_btn.click(self.speak, [preview_text, preview_voice, rate, preview_language], preview_audio, api_name="speak",
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
                        train_consent = gr.Textbox(
                            label="Consent statement (required for a new model)",
                            info="who agreed to have a model trained on their face, and when: at least 10 "
                                 "characters (Resume keeps the one given at the start)",
                            placeholder="Anna Novak agreed on 2026-11-20 to have a model trained on her face")
                        train_covers_marked = gr.Checkbox(
                            label="The consent covers footage that carries the studio's video mark",
                            info="footage rendered by this studio is refused unless ticked", value=False)
                        train_btn = gr.Button("Train", variant="primary")
                        train_cancel = gr.Button("Cancel", variant="stop")
                    with gr.Column():
                        train_out = gr.Textbox(label="Result", lines=6, interactive=False)
                        models_btn = gr.Button("List models", size="sm")
                        models_md = gr.Markdown()
                train_btn.click(self.train, [footage, model_name, minutes, preset, resume, train_consent,
                                              train_covers_marked], train_out,
                                api_name="train", concurrency_limit=HEAVY_CONCURRENCY, concurrency_id="heavy").then(
                    lambda: (self.models(), gr.update(choices=self.model_choices())), None, [models_md, model],
                    api_name=False)
                train_cancel.click(self.cancel, None, train_out, api_name=False)
                models_btn.click(self.models, None, models_md, api_name="models")
                demo.load(self.models, None, models_md, api_name=False)  # the list is filled when the page opens
            demo.unload(self.cleanup_session)
        return demo


def _language_choices() -> list[tuple[str, str]]:
    """(name, code) of every language an installed TTS engine speaks (other languages use Kokoro)."""
    from ..voice.tts import LANGUAGES, engines_for_language

    return [(name, code) for code, name in LANGUAGES.items() if engines_for_language(code)]


def _stamp() -> str:
    import time
    import uuid

    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def face_thumbnail(frame, face, index: int, size: int = 160):
    """A square crop of the whole face (forehead to chin, with a margin) with its index drawn in the corner."""
    import cv2
    import numpy as np

    h, w = frame.shape[:2]
    pts = np.asarray(face.landmarks, np.float32)
    x1, y1 = np.minimum(pts.min(0), face.box[:2])
    x2, y2 = np.maximum(pts.max(0), face.box[2:])
    side = 1.35 * max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    right, bottom = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    crop = cv2.resize(np.ascontiguousarray(frame[top:bottom, left:right]), (size, size), interpolation=cv2.INTER_AREA)
    cv2.rectangle(crop, (0, 0), (34, 30), (0, 0, 0), -1)
    cv2.putText(crop, str(index), (6, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return crop


def _summary(result) -> str:
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds_per_stage.items())
    text = (f"**Engine:** {result.engine} · {result.frames} frames at {result.fps:g} fps "
            f"({result.duration:.1f} s) · face in {result.frames_with_face} frames  \n{stages}")
    if result.frames_with_face == 0:
        text += "  \n⚠ No face was found: the video only got the new audio."
    if getattr(result, "sync", None) is not None:
        text += f"  \n**Sync:** {result.sync.summary()}"
    report = getattr(result, "personalization", None)
    if report is not None:
        text += "  \n**Personalisation:** " + redact_paths(report.describe()).replace("\n", "  \n")
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
    """Start the app. With ``prevent_thread_lock`` it returns the Blocks at once (``demo.studio_app.shutdown()``
    then stops its jobs); otherwise it serves until interrupted (Ctrl-C, or SIGTERM/SIGHUP through the CLI), then
    cancels the running jobs, ends their ffmpeg processes, removes partial files and the app's temporary folder."""
    app, demo = create_app(device=device, workdir=workdir)
    demo.studio_app = app
    demo.queue(default_concurrency_limit=2)
    demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True,
                max_file_size=f"{MAX_UPLOAD_MB}mb", allowed_paths=[str(app.workdir), str(app.samples_dir)],
                show_error=True, quiet=prevent_thread_lock)
    if prevent_thread_lock:
        return demo
    try:
        while True:
            time.sleep(0.5)
    finally:  # KeyboardInterrupt or stops.Stopped
        app.shutdown()
        demo.close()
    return demo
