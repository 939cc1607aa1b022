"""Dataset XML takes the C parser's fast path only when it surely declares no entity."""

from __future__ import annotations

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
