"""Trust by default: what makes the studio's output recognisable as made, and how it was made.

- :mod:`studio.trust.audio_mark`: the inaudible audio watermark (Perth) in every speech the studio makes;
- :mod:`studio.trust.video_mark`: the invisible video mark (magic + job id) in the face of every rendered frame,
  and the optional visible "AI-generated" label;
- :mod:`studio.trust.consent`: the consent rule for voices and actor models, and no laundering of faces;
- :mod:`studio.trust.provenance`: the signed provenance record of every output (a JSON sidecar signed with
  ed25519, and a C2PA manifest inside MP4 outputs), keys made on first use under ``studio_home()/keys``;
- :mod:`studio.trust.verify`: ``studio verify FILE``;
- :mod:`studio.trust.detect`: ``studio detect FILE``, how likely a talking face was re-synced (uses the sync score
  of :mod:`studio.lipsync.sync_score` and the face tracker).

This package sits below the API: it uses studio.audio, studio.video, studio.paths and studio.log only, and
importing it loads nothing heavy (models and keys load on first use).
"""
