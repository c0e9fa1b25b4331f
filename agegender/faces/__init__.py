"""Find, align and crop faces in real photos into UTKFace-style 200x200 chips.

Typical use::

    from agegender.faces import create_detector, extract_faces

    for face in extract_faces(image_rgb, create_detector("auto")):
        predict(face.crop)  # every face; face.status is "ok" or "low_quality" (then face.reasons says why)
        if not face.ok:
            report(face.status, face.reasons, face.message)
"""

from agegender.face_filter import QualityFilter
from agegender.faces.align import (
    BLUR_THRESHOLD,
    BOX_FRAMES,
    UTKFACE_SIZE,
    UTKFACE_TEMPLATE,
    FaceCrop,
    align_face,
    alignment_matrix,
    box_matrix,
    crop_from_box,
    extract_faces,
    face_quality,
    template_landmarks,
)
from agegender.faces.detectors import (
    Detection,
    FaceDetector,
    HaarDetector,
    MTCNNDetector,
    YuNetDetector,
    available_detectors,
    create_detector,
    register_detector,
)
from agegender.faces.flags import (
    LOW_SCORE_THRESHOLDS,
    MIN_FACE_SIZE,
    REASONS,
    YAW_THRESHOLD,
    FaceFlags,
    yaw_ratio,
)

__all__ = [
    "BLUR_THRESHOLD",
    "BOX_FRAMES",
    "LOW_SCORE_THRESHOLDS",
    "MIN_FACE_SIZE",
    "REASONS",
    "UTKFACE_SIZE",
    "UTKFACE_TEMPLATE",
    "YAW_THRESHOLD",
    "Detection",
    "FaceCrop",
    "FaceFlags",
    "FaceDetector",
    "HaarDetector",
    "MTCNNDetector",
    "QualityFilter",
    "YuNetDetector",
    "align_face",
    "alignment_matrix",
    "available_detectors",
    "box_matrix",
    "create_detector",
    "crop_from_box",
    "extract_faces",
    "face_quality",
    "register_detector",
    "template_landmarks",
    "yaw_ratio",
]
