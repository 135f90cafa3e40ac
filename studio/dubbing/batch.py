"""Many dubbing jobs from a CSV or JSON file, in local worker processes; one failing job never stops the others.

Each row names a ``video`` and usually its ``subs`` (without, the video's English speech is transcribed), and
optionally ``out``, ``to`` (translate into), ``lang`` (language
of the subtitles), ``voice``, ``consent``, ``engine``, ``model`` and ``name`` (the job folder's name under
``jobs_dir``). Relative paths are relative to the batch file. A job whose output exists and whose inputs have not
changed since it finished is skipped; an unfinished one resumes from its job folder.

Jobs run in local worker processes, or as tasks on an existing Ray cluster (``ray="auto"`` or its address): one
task per job, each asking for a GPU when the cluster has one (the lip-sync is the stage that uses it); the job
folders must then lie on storage every node sees, and the nodes need the studio installed. Ray is optional
(``pip install ray``).
"""
from __future__ import annotations

import csv
import json
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from ..errors import InputError, StudioError
from ..log import get_logger
from ..progress import Progress
from .files import key, read_json

log = get_logger("dubbing.batch")

COLUMNS = ("video", "subs", "out", "to", "lang", "voice", "consent", "engine", "model", "name")


@dataclass(frozen=True)
class BatchJob:
    name: str
    video: str
    subs: Optional[str]  # None: transcribed from the video's speech
    out: str
    to: Optional[str] = None
    lang: Optional[str] = None
    voice: Optional[str] = None
    consent: Optional[str] = None
    engine: Optional[str] = None
    model: Optional[str] = None


@dataclass(frozen=True)
class JobOutcome:
    name: str
    status: str  # "done", "skipped" or "failed"
    out: Optional[str] = None
    error: Optional[str] = None
    report: Optional[str] = None


@dataclass(frozen=True)
class BatchResult:
    outcomes: tuple[JobOutcome, ...]

    @property
    def failed(self) -> list[JobOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def _rows(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise InputError(f"batch file {path} is not valid JSON ({e}); give a list of objects with video and subs")
        data = data.get("jobs", data) if isinstance(data, dict) else data
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise InputError(f"batch file {path} must hold a list of objects like "
                             '{"video": "ep01.mp4", "subs": "ep01.es.srt"}')
        return data
    rows = list(csv.DictReader(text.splitlines()))
    if rows and "video" not in rows[0]:
        raise InputError(f"batch file {path} needs a header row with at least the column video "
                         f"(optional: {', '.join(COLUMNS[1:])})")
    return rows


def read_batch(path, jobs_dir) -> list[BatchJob]:
    """The jobs of a CSV or JSON batch file; InputError for a row without video or subs."""
    from ..video.io import check_input_file

    path = check_input_file(path, "batch")
    base, jobs_dir = path.parent, Path(jobs_dir).expanduser()
    jobs, names, problems = [], set(), []
    for n, row in enumerate(_rows(path), 1):
        row = {str(k).strip().lower(): (str(v).strip() if v is not None else "") for k, v in row.items() if k}
        if not row.get("video"):
            problems.append(f"row {n} needs a video")
            continue
        video = base / Path(row["video"]).expanduser()
        name = row.get("name") or re.sub(r"[^A-Za-z0-9_.-]+", "_", video.stem)
        stem, k = name, 2
        while name in names:
            name, k = f"{stem}-{k}", k + 1
        names.add(name)
        suffix = f".{row['to']}" if row.get("to") else ".dub"
        out = base / row["out"] if row.get("out") else jobs_dir / name / f"{video.stem}{suffix}.mp4"
        subs = str(base / Path(row["subs"]).expanduser()) if row.get("subs") else None
        jobs.append(BatchJob(name, str(video), subs, str(out),
                             **{c: row.get(c) or None for c in ("to", "lang", "voice", "consent", "engine", "model")}))
    if problems:
        raise InputError(f"batch file {path}: " + "; ".join(problems))
    if not jobs:
        raise InputError(f"batch file {path} has no jobs; give one row per video (columns video,subs,...)")
    return jobs


def _fingerprint(job: BatchJob, options) -> str:
    def stat(p):
        if p is None:
            return None
        try:
            s = Path(p).stat()
            return [s.st_size, s.st_mtime_ns]
        except OSError:
            return None

    return key("batch-job", job.__dict__, stat(job.video), stat(job.subs), repr(options))


def _options(job: BatchJob, options, jobs_dir: Path):
    lipsync = options.lipsync
    if job.engine or job.model:
        lipsync = replace(lipsync, engine=job.engine or lipsync.engine, model=job.model or lipsync.model)
    return replace(options, language=job.lang or options.language, target_language=job.to or options.target_language,
                   voice=job.voice or options.voice, consent=job.consent or options.consent, lipsync=lipsync,
                   job_dir=str(jobs_dir / job.name))


def _run_one(job: BatchJob, options, jobs_dir: str, device: str) -> JobOutcome:
    """One job in a worker process: every error becomes a failed outcome."""
    from .files import write_json
    from .job import run_dub

    jobs_dir = Path(jobs_dir)
    try:
        result = run_dub(job.video, job.subs, job.out, _options(job, options, jobs_dir), device=device)
        write_json(jobs_dir / job.name / "batch-done.json", {"fingerprint": _fingerprint(job, options),
                                                              "out": str(result.path)})
        return JobOutcome(job.name, "done", str(result.path), None, str(result.report_path))
    except StudioError as e:
        return JobOutcome(job.name, "failed", job.out, str(e))
    except Exception as e:  # a bug or a tool failure in one job must not stop the batch
        log.exception("job %s failed", job.name)
        return JobOutcome(job.name, "failed", job.out, f"{type(e).__name__}: {e}")


def is_finished(job: BatchJob, options, jobs_dir: Path) -> bool:
    done = read_json(jobs_dir / job.name / "batch-done.json")
    return bool(done and done.get("fingerprint") == _fingerprint(job, options) and Path(done["out"]).is_file())


def _connect_ray(address: str):
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs Ray: pip install ray (or run the batch without --ray: local workers)") from None
    if not ray.is_initialized():
        import os

        env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
        try:
            ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": env} if env else None)
        except ConnectionError as e:
            raise InputError(f"no Ray cluster at {address!r} ({e}); start one (`ray start --head`) or give its "
                             "address, e.g. --ray ray://head:10001") from None
    return ray


def _run_on_ray(todo, options, jobs_dir: Path, device: str, address: str, on_outcome) -> None:
    """One Ray task per job (a GPU each when the cluster has GPUs); outcomes in the order they finish."""
    ray = _connect_ray(address)
    gpus = ray.cluster_resources().get("GPU", 0) >= 1 and device != "cpu"
    task = ray.remote(num_gpus=1 if gpus else 0, max_retries=0)(_run_one)
    refs = {task.remote(job, options, str(jobs_dir), "cuda" if gpus else "cpu"): job for job in todo}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        job = refs[done[0]]
        try:
            outcome = ray.get(done[0])
        except Exception as e:  # the task's worker died or the node was lost
            outcome = JobOutcome(job.name, "failed", job.out, f"its Ray task failed ({type(e).__name__}: "
                                 f"{str(e).splitlines()[0] if str(e) else ''}); run the batch again to resume it")
        on_outcome(job, outcome)


def run_batch(path, jobs_dir, options, *, workers: int = 1, device: str = "cpu", progress=None,
              ray: Optional[str] = None) -> BatchResult:
    """Run every job of a batch file; finished jobs are skipped. Progress stage: "dub batch". ``ray``: "auto" or
    a cluster address: the jobs run as Ray tasks instead of local worker processes."""
    progress = Progress.of(progress)
    if workers < 1:
        raise InputError(f"--workers {workers}: give 1 or more worker processes")
    jobs_dir = Path(jobs_dir).expanduser()
    jobs_dir.mkdir(parents=True, exist_ok=True)
    jobs = read_batch(path, jobs_dir)
    outcomes: dict[str, JobOutcome] = {}
    todo = []
    for job in jobs:
        if is_finished(job, options, jobs_dir):
            outcomes[job.name] = JobOutcome(job.name, "skipped", job.out)
        else:
            todo.append(job)
    progress.update("dub batch", len(outcomes), len(jobs))
    def record(job, outcome):
        outcomes[job.name] = outcome
        progress.update("dub batch", len(outcomes), len(jobs))

    if todo and ray:
        _run_on_ray(todo, options, jobs_dir, device, ray, record)
    elif todo:
        with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            futures = {pool.submit(_run_one, job, options, str(jobs_dir), device): job for job in todo}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    outcomes[job.name] = future.result()
                except BrokenProcessPool:
                    outcomes[job.name] = JobOutcome(job.name, "failed", job.out, "its worker process died (out of "
                                                    "memory?); run the batch again to resume it")
                except Exception as e:
                    outcomes[job.name] = JobOutcome(job.name, "failed", job.out, f"{type(e).__name__}: {e}")
                progress.update("dub batch", len(outcomes), len(jobs))
    result = BatchResult(tuple(outcomes[j.name] for j in jobs))
    log.info("batch %s: %d done, %d skipped, %d failed", path, sum(o.status == "done" for o in result.outcomes),
             sum(o.status == "skipped" for o in result.outcomes), len(result.failed))
    return result
