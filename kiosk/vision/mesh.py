"""The face mesh's index sets: every named group of MediaPipe face-mesh (468-point) landmarks.

One place for them so that vision, photo, capture and the simulation agree on which point is the
chin or an eye corner. "Image-left" is the subject's right; pairs and rings list the image-left
eye first. Indices follow MediaPipe's canonical face model
(mediapipe/modules/face_geometry/data/canonical_face_model_uv_visualization.png).
"""

from __future__ import annotations

# --- eyes -----------------------------------------------------------------------------------------
EYE_CORNERS = ((33, 133), (263, 362))  # (outer, inner) corner of the image-left and image-right eye
EYE_CORNER_RIGHT, EYE_CORNER_LEFT = 33, 263  # subject's right (image left) and left outer corners
# eyelid pairs (upper, lower) across the eye, image-left eye then image-right eye
EYE_LIDS = (((160, 144), (159, 145), (158, 153)), ((385, 380), (386, 374), (387, 373)))
EYE_RINGS = (  # the lid margin, outer corner round the lower lid and back along the upper lid
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
)
# Eye rings from the outer to the inner corner (9 points, corners included). Ring 0 is the lid
# margin, ring 1 about the lid crease (upper) / lid edge (lower), ring 2 below the brow.
EYE_UPPER = (
    (
        (33, 246, 161, 160, 159, 158, 157, 173, 133),
        (130, 247, 30, 29, 27, 28, 56, 190, 243),
        (226, 113, 225, 224, 223, 222, 221, 189, 244),
    ),
    (
        (263, 466, 388, 387, 386, 385, 384, 398, 362),
        (359, 467, 260, 259, 257, 258, 286, 414, 463),
        (446, 342, 445, 444, 443, 442, 441, 413, 464),
    ),
)
EYE_LOWER0 = ((33, 7, 163, 144, 145, 153, 154, 155, 133), (263, 249, 390, 373, 374, 380, 381, 382, 362))
# The iris model's eye crop: (start corner, end corner, mirrored), image-left eye first
IRIS_EYES = ((33, 133, False), (362, 263, True))

# --- the iris model's 71-point eye contour ----------------------------------------------------------
# Its first 16 points are the lid margin, in the order of MediaPipe's
# update_face_landmarks_calculator: lower lid outer->inner corner (0-8), then the upper lid
# outer->inner without the corners (9-15). For a mirrored (image-right) eye the same order holds
# on the mirrored crop, i.e. for mesh points 263, 249, ... 362, 466, ... 398.
CONTOUR_OUTER, CONTOUR_INNER = 0, 8
# (upper, lower) contour points across the eye at the mesh pairs 160/144, 159/145, 158/153
CONTOUR_LIDS = ((11, 3), (12, 4), (13, 5))

# --- brows, mouth, outline --------------------------------------------------------------------------
BROWS = (70, 63, 105, 66, 107, 300, 293, 334, 296, 336)  # upper edge of both eyebrows
BROWS_LOWER = ((46, 53, 52, 65, 55), (276, 283, 282, 295, 285))  # lower edge of each eyebrow
LIPS_INNER = (13, 14)  # upper and lower inner lip, centre
LIP_UPPER_INNER, LIP_LOWER_INNER, LIP_LOWER_OUTER = 13, 14, 17
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
MOUTH_CORNERS = (61, 291)
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
CHEEKS = (234, 454)  # face-width points, at the height of the eyes
NOSE_BRIDGE, NOSE_TIP, CHIN = 168, 1, 152
FOREHEAD = 10  # top of the mesh, near the hairline
# The forehead band: the oval's upper points between the temples (mesh top edge, left to right)
FOREHEAD_TOP = (54, 103, 67, 109, 10, 338, 297, 332, 284)
