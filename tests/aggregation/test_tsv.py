from __future__ import annotations

import io

import pandas as pd
import pytest

from aggregation import TsvError, known_answers, read_assignments_tsv, write_aggregated_tsv
from aggregation.tsv import format_confidence

HEADER = "INPUT:image\tOUTPUT:result\tGOLDEN:result\tASSIGNMENT:worker_id\tASSIGNMENT:status\n"


def tsv(*rows: str) -> io.StringIO:
    return io.StringIO(HEADER + "".join(row + "\n" for row in rows))


def test_reads_answers_with_the_input_as_task_and_output_as_label():
    df = read_assignments_tsv(
        tsv(
            "http://x/1.jpg\tcat\t\tw1\tAPPROVED",
            "http://x/1.jpg\tdog\t\tw2\tSUBMITTED",
            "http://x/2.jpg\tdog\tdog\tw1\tAPPROVED",
        )
    )
    assert df[["task", "worker", "label"]].values.tolist() == [
        ["http://x/1.jpg", "w1", "cat"],
        ["http://x/1.jpg", "w2", "dog"],
        ["http://x/2.jpg", "w1", "dog"],
    ]
    assert df["row"].tolist() == [2, 3, 4]
    assert known_answers(df).to_dict() == {"http://x/2.jpg": "dog"}
    assert df.attrs["input_fields"] == ["image"]


def test_skips_blank_rows_empty_outputs_and_rejected_assignments_but_counts_their_rows():
    df = read_assignments_tsv(
        tsv(
            "a.jpg\tcat\t\tw1\tAPPROVED",
            "",
            "a.jpg\t\t\tw2\tAPPROVED",
            "a.jpg\tdog\t\tw3\tREJECTED",
            "b.jpg\tdog\t\tw1\tAPPROVED",
        )
    )
    assert df["worker"].tolist() == ["w1", "w1"]
    assert df["row"].tolist() == [2, 6]
    kept = read_assignments_tsv(tsv("a.jpg\tdog\t\tw3\tREJECTED"), skip_rejected=False)
    assert kept["label"].tolist() == ["dog"]


def test_several_input_columns_join_into_one_task_key_and_doubled_quotes_unescape():
    header = "INPUT:text\tINPUT:lang\tOUTPUT:result\tASSIGNMENT:worker_id\n"
    text = header + '"monitor 24"" buy"\ten\tok\tw1\n'
    df = read_assignments_tsv(io.StringIO(text))
    assert df["task"].tolist() == ['monitor 24" buy\ten']
    assert df.attrs["input_fields"] == ["text", "lang"]


def test_reads_paths_and_binary_files_with_a_bom(tmp_path):
    data = ("\ufeff" + HEADER + "a.jpg\tcat\t\tw1\tAPPROVED\n").encode()
    path = tmp_path / "results.tsv"
    path.write_bytes(data)
    assert read_assignments_tsv(path)["label"].tolist() == ["cat"]
    assert read_assignments_tsv(io.BytesIO(data))["label"].tolist() == ["cat"]


@pytest.mark.parametrize(
    ("text", "row", "column", "words"),
    [
        ("", 1, None, "empty"),
        ("OUTPUT:result\tASSIGNMENT:worker_id\nx\tw\n", 1, None, "INPUT"),
        ("INPUT:image\tOUTPUT:label\tASSIGNMENT:worker_id\n", 1, "OUTPUT:result", "OUTPUT:label"),
        ("INPUT:image\tOUTPUT:result\n", 1, "ASSIGNMENT:worker_id", "worker_id"),
        ("INPUT:a\tINPUT:a\tOUTPUT:result\tASSIGNMENT:worker_id\n", 1, "INPUT:a", "twice"),
    ],
)
def test_header_errors_name_row_one(text, row, column, words):
    with pytest.raises(TsvError, match=words) as caught:
        read_assignments_tsv(io.StringIO(text))
    assert (caught.value.row, caught.value.column) == (row, column)


def test_a_row_with_a_missing_field_is_named_by_its_spreadsheet_row():
    source = tsv("a.jpg\tcat\t\tw1\tAPPROVED", "", "b.jpg\tcat\tw1\tAPPROVED")
    with pytest.raises(TsvError, match="4 fields, but the header has 5") as caught:
        read_assignments_tsv(source)
    assert caught.value.row == 4
    assert str(caught.value).startswith("row 4: ")


def test_bad_quoting_is_named_by_its_row():
    with pytest.raises(TsvError, match='""') as caught:
        read_assignments_tsv(tsv("a.jpg\tcat\t\tw1\tAPPROVED", '"b.jpg"x\tcat\t\tw1\tAPPROVED'))
    assert caught.value.row == 3
    with pytest.raises(TsvError) as unterminated:
        read_assignments_tsv(tsv('"b.jpg\tcat\t\tw1\tAPPROVED'))
    assert unterminated.value.row == 2


def test_a_row_after_a_quoted_multiline_field_keeps_its_spreadsheet_number():
    source = tsv('"a\nb.jpg"\tcat\t\tw1\tAPPROVED', "c.jpg\tcat\t\t\tAPPROVED")
    with pytest.raises(TsvError, match="worker") as caught:
        read_assignments_tsv(source)
    assert (caught.value.row, caught.value.column) == (3, "ASSIGNMENT:worker_id")


def test_empty_input_and_disagreeing_golden_values_name_row_and_column():
    with pytest.raises(TsvError) as empty:
        read_assignments_tsv(tsv("\tcat\t\tw1\tAPPROVED"))
    assert (empty.value.row, empty.value.column) == (2, "INPUT:image")
    with pytest.raises(TsvError, match="row 2") as golden:
        read_assignments_tsv(tsv("a.jpg\tcat\tcat\tw1\tAPPROVED", "a.jpg\tcat\tdog\tw2\tAPPROVED"))
    assert (golden.value.row, golden.value.column) == (3, "GOLDEN:result")


def test_not_utf8_names_the_row():
    data = (HEADER + "a.jpg\tcat\t\tw1\tAPPROVED\n").encode() + b"b\xff.jpg\tcat\t\tw1\tAPPROVED\n"
    with pytest.raises(TsvError, match="UTF-8"):
        read_assignments_tsv(io.BytesIO(data))


def test_written_tsv_has_toloka_header_and_reads_back(tmp_path):
    rows = pd.DataFrame(
        {
            "task": ["a.jpg", 'say "hi"\tnow', "c.jpg"],
            "label": ["cat", "dog", "cat"],
            "confidence": [1.0, 2 / 3, 0.5],
        }
    )
    path = tmp_path / "aggregated.tsv"
    assert write_aggregated_tsv(rows, path) == 3
    text = path.read_text()
    assert text.splitlines()[0] == "INPUT:image\tOUTPUT:result\tCONFIDENCE:result"
    assert text.splitlines()[1] == "a.jpg\tcat\t1"
    assert '"say ""hi""\tnow"\tdog\t0.6667' in text
    back = pd.read_csv(path, sep="\t", quoting=0, keep_default_na=False)
    assert back["INPUT:image"].tolist() == rows["task"].tolist()
    assert back["CONFIDENCE:result"].tolist() == [1.0, 0.6667, 0.5]


def test_write_splits_multi_input_keys_and_accepts_tuples():
    out = io.StringIO()
    write_aggregated_tsv([("x\ten", "ok", 0.25)], out, input_field=["text", "lang"])
    assert (
        out.getvalue()
        == "INPUT:text\tINPUT:lang\tOUTPUT:result\tCONFIDENCE:result\nx\ten\tok\t0.25\n"
    )


@pytest.mark.parametrize(
    ("value", "text"), [(1, "1"), (0.0, "0"), (0.66666, "0.6667"), (0.5, "0.5")]
)
def test_confidence_has_at_most_four_decimals(value, text):
    assert format_confidence(value) == text


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan")])
def test_confidence_outside_zero_one_is_refused(value):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        write_aggregated_tsv([("a", "b", value)], io.StringIO())


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("+cmd", "'+cmd"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("'=already", "''=already"),
        ("-0.5", "-0.5"),
        ("cat", "cat"),
    ],
)
def test_formula_cells_get_a_quote_and_read_back_unchanged(value, written):
    from aggregation.tsv import from_spreadsheet_safe, spreadsheet_safe

    assert spreadsheet_safe(value) == written
    assert from_spreadsheet_safe(written) == value


def test_written_formulas_are_neutralised_but_confidence_is_a_number(tmp_path):
    path = tmp_path / "out.tsv"
    write_aggregated_tsv([('=HYPERLINK("http://evil")', "@cat", 0.5)], path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[1] == '"\'=HYPERLINK(""http://evil"")"\t\'@cat\t0.5'
