"""Document photos: versioned profiles, compliance checks, composing and encoding the photo.

Touches no hardware; builds on kiosk.vision for faces and person segmentation.
"""

from kiosk.photo.profiles import Profile, get_profile, load_profiles
from kiosk.photo.results import CheckReport, CheckResult, PhotoResult
from kiosk.photo.service import PhotoError, PhotoTools, make_photo, run_check

__all__ = [
    "CheckReport",
    "CheckResult",
    "PhotoError",
    "PhotoResult",
    "PhotoTools",
    "Profile",
    "get_profile",
    "load_profiles",
    "make_photo",
    "run_check",
]
