"""No secret in the log at any level: Basic-auth headers, AuthorizationKey values, passwords."""

from __future__ import annotations

import base64
import json
import logging

from ocpp.messages import Call
from ocpp.v16 import call
from ocpp_peer import Charger
import pytest
from websockets.exceptions import InvalidStatus

from custom_components.ev_charging_expert.evcore.ocpp.v16.handler import redact_frame

OLD = "old-Secret-0123456789"
NEW = "new-Secret-}{-987654321"  # braces: the redaction must not stop at them
GUESS = "guess-Secret-5555555555"
# The test's own peers log what they send and receive; those logs are not ours.
CLIENT_LOGGERS = ("tests.peer", "websockets.client")


class QuietCharger(Charger):
    """The peer logs its frames (with the key we send it) under its own name."""

    def __init__(self, station_id: str, connection: object) -> None:
        super().__init__(station_id, connection)
        self.logger = logging.getLogger("tests.peer")


def basic(password: str) -> str:
    return base64.b64encode(f"CP1:{password}".encode()).decode()


async def test_a_security_profile_1_session_at_debug_level_logs_no_secret(
    central_system, connect_cp, connect_raw, caplog
):
    for name in ("custom_components.ev_charging_expert", "websockets", "ocpp", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    site, _, _ = central_system
    site.accept_station("CP1")
    site.set_password("CP1", OLD)

    charger = await connect_cp("CP1", user_info=f"CP1:{OLD}", charger_cls=QuietCharger)
    # The central system gives the charger a new key; the charger (wrongly) reports it back.
    assert await site.charger("CP1").set_configuration("AuthorizationKey", NEW) == "Accepted"
    site.set_password("CP1", NEW)
    charger.configuration["AuthorizationKey"] = NEW
    await site.charger("CP1").get_configuration()
    await charger.call(call.Heartbeat(), suppress=False)
    # A guess, then the charger back with its new key.
    with pytest.raises(InvalidStatus):
        await connect_raw(
            "/ocpp/CP1", additional_headers={"Authorization": f"Basic {basic(GUESS)}"}
        )
    await connect_cp(
        "CP1", headers={"Authorization": f"Basic {basic(NEW)}"}, charger_cls=QuietCharger
    )

    ours = [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in ours)
    assert "AuthorizationKey" in text  # the frames were logged, redacted
    assert "<redacted>" in text  # so was the Authorization header
    # websockets shows a frame's head and tail: look for the ends of the secrets too.
    for secret in (OLD, NEW, GUESS, basic(OLD), basic(NEW), basic(GUESS), NEW[:10], NEW[-10:]):
        assert secret not in text


@pytest.mark.parametrize("secret", ["plain-0123456789", "q\"uo'te\\s}{", '{"value": "x"}'])
def test_frame_redaction_holds_for_any_characters_in_the_key(secret):
    key = {"key": "AuthorizationKey", "value": secret}
    frames = [
        json.dumps([2, "1", "ChangeConfiguration", key]),
        json.dumps([3, "1", {"configurationKey": [{"value": secret, "key": "AuthorizationKey"}]}]),
        str(Call("1", "ChangeConfiguration", key)),
    ]

    for frame in frames:
        redacted = str(redact_frame(frame))
        assert "AuthorizationKey" in redacted
        assert json.dumps(secret)[1:-1] not in redacted
        assert repr(secret)[1:-1] not in redacted
