"""Tier file parsing: valid rows, and every rejected row reported by its physical line."""

from __future__ import annotations

import io

import msgspec
import pytest

from tierline.tiers import codec
from tierline.tiers.model import TierRecord
from tierline.tiers.parse import HOPELESS_AFTER, BadTierFile, ParsedTiers, Rejection, TierFileFormat, parse_tier_file


def parse(text: str | bytes, fmt: TierFileFormat = "csv", cap: int = 1000) -> ParsedTiers:
    data = text.encode() if isinstance(text, str) else text
    return parse_tier_file(io.BytesIO(data), fmt, cap)


def record(parsed: ParsedTiers, caller: str) -> TierRecord:
    return codec.decode(caller, parsed.records[caller], parsed.fields)


def lines(parsed: ParsedTiers) -> list[int]:
    return [rejection.line for rejection in parsed.rejected]


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_rows_become_records_with_crm_fields() -> None:
    parsed = parse(
        "caller,tier,customer_id,name\n"
        "+86 139 1234 5678,VIP,C001, Wang Li \n"
        "00861390000001, mid ,C002,\n"
        "8613900000002,Standard,,\n"
        "555123,blacklisted,C004,Spam Co\n"
    )
    assert parsed.rejected == [] and parsed.rejected_count == 0
    assert parsed.loaded == 4 and parsed.data_rows == 4
    assert record(parsed, "+8613912345678") == TierRecord(
        caller="+8613912345678", tier="vip", crm={"customer_id": "C001", "name": "Wang Li"}
    )
    assert record(parsed, "+861390000001") == TierRecord(
        caller="+861390000001", tier="mid", crm={"customer_id": "C002"}
    )
    assert record(parsed, "8613900000002").crm == {}  # empty columns travel as nothing
    assert record(parsed, "555123").tier == "blacklisted"


def test_csv_columns_are_matched_by_name_in_any_order_and_case() -> None:
    parsed = parse(" Name ,TIER,  Caller,Segment\nAnn,vip,111222,gold\n")
    assert record(parsed, "111222") == TierRecord(caller="111222", tier="vip", crm={"Name": "Ann", "Segment": "gold"})


def test_csv_with_bom_and_crlf() -> None:
    parsed = parse(b"\xef\xbb\xbfcaller,tier\r\n111222,vip\r\n\r\n333444,mid\r\n")
    assert parsed.loaded == 2 and parsed.rejected == []


def test_csv_rejections_carry_physical_lines_counting_header_and_blank_lines() -> None:
    parsed = parse(
        "caller,tier,customer_id\n"  # 1
        "111222,vip,C1\n"  # 2
        "\n"  # 3 blank: skipped, counted
        "12,vip,C2\n"  # 4 too short
        "   \n"  # 5 blank
        "333444,gold,C3\n"  # 6 unknown tier
        "444555,,C4\n"  # 7 empty tier
        "555666,vip\n"  # 8 wrong column count
        ",,\n"  # 9 an empty spreadsheet row: blank
        "666777,mid,C6,extra\n"  # 10 wrong column count
        "phone,vip,C7\n"  # 11 not a number
        "777888,mid,C8\n"  # 12
    )
    assert parsed.rejected == [
        Rejection(line=4, reason="caller number '12' has 2 digits; at least 3 are needed"),
        Rejection(line=6, reason="unknown tier 'gold' (expected vip, mid, standard or blacklisted)"),
        Rejection(line=7, reason="tier is empty"),
        Rejection(line=8, reason="expected 3 columns, found 2"),
        Rejection(line=10, reason="expected 3 columns, found 4"),
        Rejection(line=11, reason=parsed.rejected[5].reason),
    ]
    assert "'p' is not a digit" in parsed.rejected[5].reason
    assert parsed.rejected_count == 6
    assert parsed.data_rows == 8
    assert sorted(parsed.records) == ["111222", "777888"]


def test_csv_header_after_leading_blank_lines_keeps_physical_numbering() -> None:
    parsed = parse("\n\ncaller,tier\n111222,vip\nbad,vip\n")
    assert lines(parsed) == [5]


def test_duplicate_caller_after_normalisation_names_the_first_line() -> None:
    parsed = parse(
        "caller,tier,customer_id\n"
        "111222,vip,FIRST\n"  # 2
        "333444,mid,X\n"  # 3
        "+86 139 0000 001,mid,A\n"  # 4
        "111-222,standard,SECOND\n"  # 5
        "0086 1390000001,vip,B\n"  # 6
    )
    assert parsed.rejected == [
        Rejection(line=5, reason="caller 111222 is a duplicate of line 2"),
        Rejection(line=6, reason="caller +861390000001 is a duplicate of line 4"),
    ]
    assert record(parsed, "111222").crm == {"customer_id": "FIRST"}  # the first row stays
    assert record(parsed, "+861390000001").tier == "mid"


def test_a_row_after_a_rejected_one_with_the_same_caller_is_not_a_duplicate() -> None:
    parsed = parse("caller,tier\n111222,gold\n111222,vip\n")
    assert lines(parsed) == [2]
    assert record(parsed, "111222").tier == "vip"


def test_rejections_are_listed_up_to_the_cap_and_all_counted() -> None:
    body = "caller,tier\n111222,vip\n" + "bad,vip\n" * 1500 + "333444,mid\n" + "111222,mid\n"
    parsed = parse(body)
    assert len(parsed.rejected) == 1000
    assert parsed.rejected_count == 1501
    assert lines(parsed) == list(range(3, 1003))
    assert parsed.data_rows == 1503 and parsed.loaded == 2


def test_duplicates_past_the_cap_are_counted_not_listed() -> None:
    parsed = parse("caller,tier\n111,vip\n111,vip\n111,mid\n111,mid\n", cap=2)
    assert parsed.rejected == [
        Rejection(line=3, reason="caller 111 is a duplicate of line 2"),
        Rejection(line=4, reason="caller 111 is a duplicate of line 2"),
    ]
    assert parsed.rejected_count == 3


def test_quoted_values_and_a_quote_left_open() -> None:
    parsed = parse(
        "caller,tier,name\n"  # 1
        '111222,vip,"Smith, ""Big"" Co"\n'  # 2: quoting as CSV has it
        '222333,vip,"Jones\n'  # 3: the quote never closes on this line...
        "333444,mid,Lee\n"  # 4: ...and swallows this row
        '444555,mid,Kim"\n'  # 5: until a stray quote ends it
        "555666,mid,Park\n"  # 6
    )
    assert record(parsed, "111222").crm == {"name": 'Smith, "Big" Co'}
    assert lines(parsed) == [3]
    assert "runs over lines 3-5" in parsed.rejected[0].reason
    # The swallowed rows count as rejected rows, so the reject ratio sees them.
    assert parsed.rejected_count == 3 and parsed.data_rows == 5
    assert sorted(parsed.records) == ["111222", "555666"]


def test_a_quote_left_open_to_the_end_of_a_big_file_breaks_the_file() -> None:
    body = 'caller,tier,name\n111222,vip,"open\n' + "333444,mid,x\n" * 20_000
    with pytest.raises(BadTierFile, match="quote left open") as caught:
        parse(body)
    assert caught.value.line is not None and caught.value.line > 2


def test_invalid_utf8_rejects_only_its_row() -> None:
    parsed = parse(b"caller,tier,name\n111222,vip,Caf\xe9\n333444,mid,Caf\xc3\xa9\n55\xff5666,vip,x\n")
    assert parsed.rejected[0] == Rejection(line=2, reason="not valid UTF-8 text")
    assert lines(parsed) == [2, 4]
    assert record(parsed, "333444").crm == {"name": "Café"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ("caller,customer_id\n111222,C1\n", "no tier column"),
        ("phone,tier\n111222,vip\n", "no caller column"),
        ("name,segment\nA,B\n", "no caller and no tier column"),
        ("111222,vip\n333444,mid\n", "no caller and no tier column"),  # a file without its header
        ("caller,tier,name,NAME\n", "'NAME' appears twice"),
        ("caller,tier,Caller\n", "appears twice"),
        ("caller;tier;name\n111222;vip;A\n", "separated by commas"),
    ],
)
def test_a_file_without_a_usable_header_is_a_bad_tier_file(body: str, message: str) -> None:
    with pytest.raises(BadTierFile, match=message):
        parse(body)


def test_a_header_only_file_has_no_rows() -> None:
    parsed = parse("caller,tier\n")
    assert parsed.loaded == 0 and parsed.data_rows == 0 and parsed.rejected == []


def test_unnamed_columns_are_ignored() -> None:
    parsed = parse("caller,tier,\n111222,vip,junk\n")
    assert record(parsed, "111222").crm == {}


def test_the_stream_is_left_open() -> None:
    stream = io.BytesIO(b"caller,tier\n111222,vip\n")
    parse_tier_file(stream, "csv")
    assert not stream.closed


# --- JSON Lines --------------------------------------------------------------------------------


def test_ndjson_rows_with_scalar_crm_values() -> None:
    parsed = parse(
        b"\xef\xbb\xbf"
        b'{"caller": "+86 139 1234 5678", "tier": "VIP", "customer_id": "C001", "score": 7,'
        b' "ratio": 0.5, "active": true, "churned": false, "note": null, "empty": "  "}\n'
        b'{"Caller": 8613900000002, "Tier": "mid"}\n',
        "ndjson",
    )
    assert parsed.rejected == []
    assert record(parsed, "+8613912345678") == TierRecord(
        caller="+8613912345678",
        tier="vip",
        crm={"customer_id": "C001", "score": "7", "ratio": "0.5", "active": "true", "churned": "false"},
    )
    assert record(parsed, "8613900000002") == TierRecord(caller="8613900000002", tier="mid")


def test_ndjson_rejections_carry_physical_lines() -> None:
    parsed = parse(
        '{"caller": "111222", "tier": "vip"}\n'  # 1
        "\n"  # 2 blank
        "[1, 2]\n"  # 3 not an object
        "{not json\n"  # 4
        '{"caller": "333444", "tier": "vip", "address": {"city": "X"}}\n'  # 5 nested
        '{"caller": "444555", "tier": "vip", "tags": ["a"]}\n'  # 6 nested
        '{"tier": "vip"}\n'  # 7 no caller
        '{"caller": "555666"}\n'  # 8 no tier
        '{"caller": "666777", "tier": 1}\n'  # 9 tier not a string
        '{"caller": true, "tier": "vip"}\n'  # 10 caller not a string
        '{"caller": "12", "tier": "vip"}\n'  # 11 too short
        '{"caller": "777888", "tier": "gold"}\n'  # 12
        '{"caller": "111-222", "tier": "mid"}\n'  # 13 duplicate of line 1
        "   \n"  # 14 blank
        '"just a string"\n'  # 15
        '{"caller": "888999", "tier": "mid"}\n',  # 16
        "ndjson",
    )
    reasons = {rejection.line: rejection.reason for rejection in parsed.rejected}
    assert list(reasons) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15]
    assert reasons[3] == "not a JSON object (found an array); each line must be one object"
    assert reasons[4].startswith("not valid JSON")
    assert reasons[5] == "field 'address' holds an object; only strings, numbers, booleans and null are allowed"
    assert reasons[6].startswith("field 'tags' holds an array")
    assert reasons[7] == "caller is missing"
    assert reasons[8] == "tier is missing"
    assert reasons[9] == "tier must be a string"
    assert reasons[10] == "caller must be a string"
    assert "at least 3" in reasons[11]
    assert reasons[12].startswith("unknown tier 'gold'")
    assert reasons[13] == "caller 111222 is a duplicate of line 1"
    assert reasons[15] == "not a JSON object (found a string); each line must be one object"
    assert parsed.rejected_count == 12 and parsed.data_rows == 14
    assert sorted(parsed.records) == ["111222", "888999"]


def test_ndjson_invalid_utf8_rejects_only_its_row() -> None:
    parsed = parse(
        b'{"caller": "111222", "tier": "vip", "name": "Caf\xe9"}\n{"caller": "333444", "tier": "vip"}\n', "ndjson"
    )
    assert parsed.rejected == [Rejection(line=1, reason="not valid UTF-8 text")]
    assert list(parsed.records) == ["333444"]


def test_ndjson_last_line_without_newline() -> None:
    parsed = parse('{"caller": "111222", "tier": "vip"}\n{"caller": "333444", "tier": "mid"}', "ndjson")
    assert parsed.loaded == 2


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(BadTierFile, match="format"):
        parse("caller,tier\n", "xml")  # type: ignore[arg-type]


# --- rows that would be merged or stored oversized (issue 13, items 12 and 14) ----------------


@pytest.mark.parametrize(
    "row",
    [
        '{"caller": "+8613800000500", "tier": "mid", "Caller": "+8613800000001"}',
        '{"tier": "mid", "tier": "blacklisted", "caller": "111222"}',
        '{"caller": "111222", "tier": "mid", "\\u0074ier": "blacklisted"}',
        '{"caller": "111222", "tier": "mid", "name": "a", "name": "b"}',
        '{"caller": "111222", "tier": "mid", "name": "say \\"hi\\"", "name": 3}',
        '{"caller": "111222", "tier": "mid", " Name ": "a", "name": "b"}',
    ],
)
def test_ndjson_row_with_a_repeated_or_case_variant_key_is_rejected_as_ambiguous(row: str) -> None:
    parsed = parse(row + '\n{"caller": "333444", "tier": "vip"}\n', "ndjson")
    assert [r.line for r in parsed.rejected] == [1]
    assert "appears more than once" in parsed.rejected[0].reason and "ambiguous" in parsed.rejected[0].reason
    assert list(parsed.records) == ["333444"]


def test_ndjson_escaped_quotes_and_unicode_escapes_are_not_mistaken_for_repeats() -> None:
    parsed = parse(
        '{"caller": "111222", "tier": "mid", "name": "say \\"hi\\"", "city": "\\u5317\\u4eac", "n": 3}\n', "ndjson"
    )
    assert parsed.rejected == []
    assert record(parsed, "111222").crm == {"name": 'say "hi"', "city": "北京", "n": "3"}


def test_a_row_holding_more_crm_fields_than_a_single_edit_may_is_rejected() -> None:
    columns = [f"c{i}" for i in range(65)]
    header = "caller,tier," + ",".join(columns)
    full = "111222,vip," + ",".join("x" for _ in columns)
    fits = "333444,vip," + ",".join("x" if i < 64 else "" for i in range(65))
    parsed = parse(f"{header}\n{full}\n{fits}\n")
    assert [r.line for r in parsed.rejected] == [2]
    assert "65 CRM fields; at most 64" in parsed.rejected[0].reason
    assert len(record(parsed, "333444").crm) == 64

    row = {"caller": "111222", "tier": "vip"} | {c: "x" for c in columns}
    assert "at most 64" in parse(msgspec.json.encode(row), "ndjson").rejected[0].reason


def test_a_crm_value_or_column_name_longer_than_a_single_edit_allows_is_refused() -> None:
    parsed = parse("caller,tier,name\n111222,vip," + "x" * 1025 + "\n333444,vip," + "y" * 1024 + "\n")
    assert [r.line for r in parsed.rejected] == [1 + 1]
    assert "1025 characters; at most 1024" in parsed.rejected[0].reason
    long_key = parse(msgspec.json.encode({"caller": "111222", "tier": "vip", "k" * 65: "v"}), "ndjson")
    assert "at most 64" in long_key.rejected[0].reason
    with pytest.raises(BadTierFile, match="at most 64"):
        parse("caller,tier," + "k" * 65 + "\n111222,vip,x\n")


def test_a_file_of_filler_rows_is_refused_as_soon_as_it_is_hopeless() -> None:
    filler = "caller,tier,name\n" + '","\n' * 200_000
    with pytest.raises(BadTierFile, match="not read as a tier file") as refused:
        parse(filler)
    # It stops where the bad rows first outnumber the good ones past the threshold, not at the end.
    assert refused.value.line == HOPELESS_AFTER + 1


def test_a_file_with_many_bad_rows_among_more_good_ones_is_still_read_to_the_end() -> None:
    rows = [f"{100000 + i},vip" if i % 3 else f"{100000 + i},gold" for i in range(3 * HOPELESS_AFTER + 3)]
    parsed = parse("caller,tier\n" + "\n".join(rows) + "\n")
    assert parsed.rejected_count == HOPELESS_AFTER + 1 and parsed.loaded == 2 * HOPELESS_AFTER + 2
