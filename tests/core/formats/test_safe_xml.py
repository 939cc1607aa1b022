"""Dataset XML takes the C parser's fast path only when it surely declares no entity."""

from __future__ import annotations

import io
from xml.etree.ElementTree import ParseError

import pytest
from defusedxml import DefusedXmlException

from annota.core.formats import safe_xml

BOMB = '<!DOCTYPE a [<!ENTITY e "xxxx">]><annotation>&e;&e;</annotation>'


def test_plain_document_is_parsed() -> None:
    root = safe_xml.fromstring(b'<?xml version="1.0" encoding="utf-8"?>\n<annotation><a>1</a></annotation>')
    assert root.tag == "annotation" and root.findtext("a") == "1"


@pytest.mark.parametrize(
    "data",
    [
        BOMB.encode(),
        # encodings whose bytes do not show "<!DOCTYPE" as ASCII
        BOMB.encode("utf-16"),
        ('<?xml version="1.0" encoding="utf-16"?>' + BOMB).encode("utf-16-le"),
        ('<?xml version="1.0" encoding="latin-1"?>' + BOMB).encode("latin-1"),
    ],
)
def test_entities_are_refused_in_any_encoding(data: bytes) -> None:
    with pytest.raises(DefusedXmlException):
        safe_xml.fromstring(data)


@pytest.mark.parametrize("data", [BOMB.encode(), BOMB.encode("utf-16")])
def test_streamed_entities_are_refused(data: bytes) -> None:
    # the declaration past the first chunk the check reads is found too
    stream = io.BytesIO(b"<!-- " + b" " * (1 << 20) + b" -->" + data if data.isascii() else data)
    with pytest.raises((DefusedXmlException, ParseError)):
        list(safe_xml.iterparse(stream, ("start", "end")))


def test_streamed_plain_document_is_parsed() -> None:
    stream = io.BytesIO(b"<annotations><image id='0'/><image id='1'/></annotations>")
    ids = [
        element.get("id") for event, element in safe_xml.iterparse(stream, ("end",)) if element.tag == "image"
    ]
    assert ids == ["0", "1"]
