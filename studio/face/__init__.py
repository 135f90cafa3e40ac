"""Face detection and tracking (mediapipe face mesh by default; face-alignment when its weights are cached)."""
from .tracking import TRACKERS, FaceTracker, OneEuroFilter, detect_faces, track_frames, track_with_frames

__all__ = ["TRACKERS", "FaceTracker", "OneEuroFilter", "detect_faces", "track_frames", "track_with_frames"]
