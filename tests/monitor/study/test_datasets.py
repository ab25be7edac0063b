import json

import numpy as np
import pytest
from PIL import Image

from monitor.study.datasets import load_jsonl, load_pope, load_shapes


def _png(path, colour):
    Image.fromarray(np.full((10, 12, 3), colour, np.uint8)).save(path)


def test_shapes_in_distribution_and_shifted():
    items = load_shapes(20, seed=3)
    assert len(items) == 20 and {i.answer for i in items} <= {"yes", "no"}
    shifted = load_shapes(20, seed=3, shift="noise")
    assert not np.array_equal(items[0].image, shifted[0].image)


def test_pope(tmp_path):
    (tmp_path / "coco").mkdir()
    _png(tmp_path / "coco" / "a.jpg", 200)
    rows = [
        {
            "question_id": 1,
            "image": "a.jpg",
            "text": "Is there a dog in the image?",
            "label": "Yes",
        },
        {"question_id": 2, "image": "a.jpg", "text": "Is there a cat?", "label": "no"},
    ]
    path = tmp_path / "pope.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    items = load_pope(path, tmp_path / "coco")
    assert [i.answer for i in items] == ["yes", "no"]
    assert items[0].image.shape == (10, 12, 3) and items[0].image[0, 0, 0] == 200
    assert len(load_pope(path, tmp_path / "coco", limit=1)) == 1
    with pytest.raises(FileNotFoundError, match=r"image not found: .*nowhere[/\\]a.jpg"):
        load_pope(path, tmp_path / "nowhere")


def test_jsonl_paths_and_errors(tmp_path):
    _png(tmp_path / "x.png", 10)
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"image": "x.png", "question": "What?", "answer": "red"}) + "\n\n")
    (item,) = load_jsonl(path)
    assert item.question == "What?" and item.answer == "red" and item.image.shape == (10, 12, 3)
    with pytest.raises(FileNotFoundError, match="dataset file not found: .*missing.jsonl"):
        load_jsonl(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "x.png", "question": "q"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: missing field\(s\) \['answer'\]"):
        load_jsonl(bad)
    bad.write_text("not json\n")
    with pytest.raises(ValueError, match="bad.jsonl:1: not JSON"):
        load_jsonl(bad)
