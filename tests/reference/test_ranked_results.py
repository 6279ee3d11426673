"""reference.ranked_results_figure: the ranked-list page of unlabeled results."""

import numpy as np
import pytest
from PIL import Image

from reference import ranked_results_figure
from reference.figures import ReportError, ranked_list_layout
from reference.figures.images import PLACEHOLDER_COLOUR
from reference.figures.ranked_list import BORDER, QUERY_COLOUR, RESULT_COLOUR

COLOURS = [(200, 0, 0), (0, 180, 0), (0, 0, 210), (250, 200, 0), (120, 0, 160)]


def solid(path, colour):
    Image.new("RGB", (64, 128), colour).save(path)
    return str(path)


def test_tiles_show_the_results_in_order(tmp_path):
    query = solid(tmp_path / "q.png", (10, 10, 10))
    results = [solid(tmp_path / f"r{k}.png", c) for k, c in enumerate(COLOURS[:4])]
    results.append(str(tmp_path / "missing.png"))
    page = ranked_results_figure(query, results, [0.1, 0.2, 0.3, 0.4, 0.5],
                                 tmp_path / "page.png", header=["q.png", "global"])
    assert page["missing_images"] == 1
    layout = ranked_list_layout(5)
    img = Image.open(tmp_path / "page.png").convert("RGB")
    assert img.size == layout["size"]
    boxes = layout["gallery_boxes"]
    assert page["boxes"] == [layout["query_box"]] + boxes

    def centre(box):
        return img.getpixel(((box[0] + box[2]) // 2, (box[1] + box[3]) // 2))

    def frame(box):
        return img.getpixel((box[0] + BORDER // 2, box[1] + BORDER // 2))

    assert centre(layout["query_box"]) == (10, 10, 10)
    assert frame(layout["query_box"]) == QUERY_COLOUR
    assert [centre(b) for b in boxes] == COLOURS[:4] + [PLACEHOLDER_COLOUR]
    assert all(frame(b) == RESULT_COLOUR for b in boxes)


@pytest.mark.parametrize("results, distances, needle", [
    ([], [], "result_images"),
    ([np.zeros((4, 4, 3))] * 2, [0.5], "distances"),
    ([np.zeros((4, 4, 3))] * 101, [0.0] * 101, "result_images"),
])
def test_bad_arguments_name_the_argument(tmp_path, results, distances, needle):
    with pytest.raises(ReportError, match=needle):
        ranked_results_figure(np.zeros((4, 4, 3)), results, distances, tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()
