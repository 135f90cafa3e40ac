"""Dubbing: subtitles in, a re-voiced, lip-synced video out, as resumable jobs (see ``job.run_dub``)."""
