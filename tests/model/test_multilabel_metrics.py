"""Multilabel evaluation figures against a small example computed by hand."""

from __future__ import annotations

import pytest

from model.multilabel import check_multilabel_items, multilabel_metrics, tags_above

# 4 images, tags cat / dog / bird
Y_TRUE = [[1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 0, 0]]
Y_PROB = [
    [0.9, 0.6, 0.2],  # predicted at 0.5: cat, dog        (both right)
    [0.7, 0.55, 0.1],  # cat, dog                          (dog is wrong)
    [0.3, 0.4, 0.8],  # bird                               (dog missed)
    [0.6, 0.1, 0.3],  # cat                                (wrong)
]


def test_figures_at_the_threshold_match_the_hand_computation():
    m = multilabel_metrics(Y_TRUE, Y_PROB, ["cat", "dog", "bird"], threshold=0.5)
    by_tag = {row["class"]: row for row in m["per_class"]}
    # cat: predicted on images 0, 1, 3; true on 0, 1 -> precision 2/3, recall 2/2
    assert by_tag["cat"]["precision"] == pytest.approx(2 / 3)
    assert by_tag["cat"]["recall"] == 1.0
    # dog: predicted on 0, 1; true on 0, 2 -> precision 1/2, recall 1/2
    assert (by_tag["dog"]["precision"], by_tag["dog"]["recall"]) == (0.5, 0.5)
    # bird: predicted on 2; true on 2 -> 1, 1
    assert (by_tag["bird"]["precision"], by_tag["bird"]["recall"]) == (1.0, 1.0)
    # overall (micro): 4 right decisions of 6 predicted; 4 of 5 true tags found
    assert m["precision"] == pytest.approx(4 / 6) and m["recall"] == pytest.approx(4 / 5)
    # AP, ranking by probability:
    # cat  0.9(+) 0.7(+) 0.6(-) 0.3(-): precision 1 at both positives -> AP 1
    # dog  0.6(+) 0.55(-) 0.4(+) 0.1(-): 1 at the first, 2/3 at the second -> (1 + 2/3) / 2
    # bird 0.8(+) ...: AP 1
    assert by_tag["cat"]["average_precision"] == 1.0
    assert by_tag["dog"]["average_precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert by_tag["bird"]["average_precision"] == 1.0
    assert m["map"] == pytest.approx((1 + 5 / 6 + 1) / 3)
    # only image 0 has exactly the right set at 0.5
    assert m["accuracy"] == 0.25
    # co-occurrence: rows = true tag, columns = predicted tag
    assert m["co_occurrence"] == [
        [2, 2, 0],  # images with cat (0, 1): cat predicted on both, dog on both
        [1, 1, 1],  # images with dog (0, 2): cat on 0, dog on 0, bird on 2
        [0, 0, 1],  # the image with bird (2): bird
    ]


def test_threshold_table_moves_precision_and_recall():
    m = multilabel_metrics(Y_TRUE, Y_PROB, ["cat", "dog", "bird"], threshold=0.5)
    rows = {row["threshold"]: row for row in m["threshold_table"]}
    # at 0.65: predicted cat(0.9, 0.7), bird(0.8): all right; recall 3/5
    assert rows[0.65]["precision"] == 1.0 and rows[0.65]["recall"] == pytest.approx(3 / 5)
    assert rows[0.65]["per_tag"][1] == [0.0, 0.0]  # dog never predicted
    assert rows[0.5]["precision"] == pytest.approx(m["precision"])


def test_a_tag_without_positives_has_no_ap_and_bad_items_are_named():
    m = multilabel_metrics([[1, 0], [1, 0]], [[0.9, 0.2], [0.8, 0.7]], ["a", "b"])
    assert m["per_class"][1]["average_precision"] is None and m["map"] == 1.0
    with pytest.raises(ValueError, match="outside 0..1"):
        check_multilabel_items([("x.png", [0, 2])], 2, "training")
    assert check_multilabel_items([("x.png", [1, 0, 1]), ("y.png", [])], 2, "t") == [
        ("x.png", [0, 1]),
        ("y.png", []),
    ]
    assert tags_above([("a", 0.2), ("b", 0.9), ("c", 0.5)], 0.5) == [("b", 0.9), ("c", 0.5)]
