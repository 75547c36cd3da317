"""``zklock status``'s table: one line per contender, whatever another client wrote."""

from __future__ import annotations

from zklock.cli.status import table
from zklock.contender import Contender


def test_an_identifier_with_control_characters_cannot_split_or_forge_a_row():
    forged = "host:1\n1  holder  mallory  1  0x1  0.0s  /x"
    contenders = [
        Contender(node="/l/a__lock__0000000001", identifier=forged, token=7, session_id=1, created_at=0.0),
        Contender(node="/l/b__lock__0000000002", identifier="ok", token=8, session_id=2, created_at=0.0),
    ]
    lines = table("/l", contenders, now=1.0).splitlines()
    assert len(lines) == 4  # the summary, the header and one row per contender
    assert "host:1\\n1  holder  mallory" in lines[2]
    assert lines[3].startswith("1  waiting  ok")
