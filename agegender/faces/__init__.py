"""Find, align and crop faces in real photos into UTKFace-style 200x200 chips.

Typical use::

    from agegender.faces import create_detector, extract_faces

    for face in extract_faces(image_rgb, create_detector("auto")):
        if face.ok:
            predict(face.crop)
        else:
            print(face.status, face.message)
"""

from agegender.faces.align import (
    BLUR_THRESHOLD,
    BOX_FRAMES,
    MIN_FACE_SIZE,
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

__all__ = [
    "BLUR_THRESHOLD",
    "BOX_FRAMES",
    "MIN_FACE_SIZE",
    "UTKFACE_SIZE",
    "UTKFACE_TEMPLATE",
    "Detection",
    "FaceCrop",
    "FaceDetector",
    "HaarDetector",
    "MTCNNDetector",
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
]
