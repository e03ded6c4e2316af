"""gzip of kept answers (`GzippedPrefix`) and who gets it (`accepts_gzip`)."""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.gzipped import MAX_ENDING, GzippedPrefix
from services.http.content_coding import accepts_gzip

ANSWER = b'{"buurt":"BU0363AD03","issues":[' + b'{"status":"open"},' * 500 + b'],"position":'


@given(prefix=st.binary(max_size=70_000), ending=st.binary(max_size=300))
def test_a_gzipped_prefix_finished_with_any_ending_is_gzip_of_the_whole(
    prefix: bytes, ending: bytes
) -> None:
    member = GzippedPrefix.of(prefix).finished(ending)
    assert gzip.decompress(member) == prefix + ending
    # As a streaming client reads it: one member, ending where the bytes end.
    reading = zlib.decompressobj(zlib.MAX_WBITS | 16)
    assert reading.decompress(member) == prefix + ending
    assert reading.eof and not reading.unused_data


def test_the_prefix_is_compressed_once_and_each_ending_is_only_added() -> None:
    prefix = GzippedPrefix.of(ANSWER)
    at_7, at_12345 = prefix.finished(b"7}"), prefix.finished(b"12345}")
    assert gzip.decompress(at_7) == ANSWER + b"7}"
    assert gzip.decompress(at_12345) == ANSWER + b"12345}"
    # The same compressed start, and much smaller than the answer.
    assert at_7.startswith(prefix.start) and at_12345.startswith(prefix.start)
    assert len(at_7) < len(ANSWER) / 10


def test_an_ending_longer_than_a_stored_block_is_refused() -> None:
    prefix = GzippedPrefix.of(ANSWER)
    assert gzip.decompress(prefix.finished(b"x" * MAX_ENDING)) == ANSWER + b"x" * MAX_ENDING
    with pytest.raises(ValueError, match="more than one stored block"):
        prefix.finished(b"x" * (MAX_ENDING + 1))


@pytest.mark.parametrize(
    ("accept_encoding", "gzip_accepted"),
    [
        (None, False),
        ("", False),
        ("identity", False),
        ("gzip", True),
        ("GZip", True),
        ("x-gzip", True),
        ("gzip, deflate, br, zstd", True),  # httpx, browsers
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("deflate, br", False),
        ("gzip;q=0", False),
        ("gzip ; q=0.0, identity", False),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=0, *", False),  # gzip named is gzip's weight, whatever `*` says
        ("gzip;q=nonsense", False),
        ("deflate;q=0.5, gzip;level=9", True),
    ],
)
def test_gzip_is_accepted_when_listed_or_starred_with_a_weight_above_zero(
    accept_encoding: str | None, gzip_accepted: bool
) -> None:
    assert accepts_gzip(accept_encoding) is gzip_accepted
