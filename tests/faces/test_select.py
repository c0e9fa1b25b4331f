"""The main-face rule: largest and most central."""

from agegender.faces.select import main_face_index


def test_no_boxes_gives_none():
    assert main_face_index([], (100, 100, 3)) is None


def test_larger_face_wins_at_equal_centrality():
    boxes = [(40, 40, 60, 60), (30, 30, 70, 70)]
    assert main_face_index(boxes, (100, 100)) == 1


def test_central_face_beats_slightly_larger_corner_face():
    central = (80, 80, 120, 120)  # 40 px, centred
    corner = (0, 0, 44, 44)  # 44 px at the corner
    assert main_face_index([corner, central], (200, 200)) == 1


def test_tiny_central_face_loses_to_big_edge_face():
    tiny = (95, 95, 105, 105)
    big = (0, 50, 80, 130)
    assert main_face_index([tiny, big], (200, 200)) == 1
