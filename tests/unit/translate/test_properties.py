"""Properties over many inputs: what the contract accepts, OICP gets unchanged."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from hubject_connector.bus.contract import MessageType, make_envelope
from hubject_connector.oicp import codec, patterns
from hubject_connector.oicp.cdr import ChargeDetailRecord
from hubject_connector.oicp.evse import EvseStatus, PushEvseStatus
from hubject_connector.translate.outbound import charge_detail_record, push_evse_status
from tests.unit.translate.conftest import CTX, documented_data

EVSE_IDS = st.from_regex(patterns.compiled("EvseID"), fullmatch=True)
STATUSES = st.sampled_from([status.value for status in EvseStatus])


@given(pairs=st.lists(st.tuples(EVSE_IDS, STATUSES), max_size=4))
def test_any_valid_status_and_evse_id_reach_hubject_unchanged(
    pairs: list[tuple[str, str]],
) -> None:
    for evse_id, status in pairs:
        # The contract takes each pair: the two sides agree on what is valid.
        make_envelope(MessageType.EVSE_STATUS, {"evse_id": evse_id, "status": status})
    push = push_evse_status("update", CTX.operator_id, CTX.operator_name, pairs)
    decoded = codec.decode(PushEvseStatus, codec.encode(push))
    assert decoded == push
    records = decoded.operator_evse_status.evse_status_records
    assert [(r.evse_id, r.evse_status.value) for r in records] == pairs


def energies(most: int) -> st.SearchStrategy[Decimal]:
    """kWh with 0 to 3 decimal places, from 0 to ``most``."""
    return st.integers(0, 3).flatmap(
        lambda places: st.decimals(min_value=0, max_value=most, places=places)
    )


# A session's energy stays under the 1000 kWh Hubject takes as plausible; meters count on.
@given(start=energies(10**6), consumed=energies(999), between=st.lists(energies(10**6),
                                                                         max_size=3))
def test_energies_reach_hubject_digit_for_digit(
    start: Decimal, consumed: Decimal, between: list[Decimal]
) -> None:
    data = documented_data(MessageType.CDR)
    end = start + consumed
    data.update(
        meter_value_start=format(start, "f"),
        meter_value_end=format(end, "f"),
        consumed_energy=format(consumed, "f"),
        meter_values_in_between=[format(value, "f") for value in between],
    )
    make_envelope(MessageType.CDR, data)
    body = codec.encode(charge_detail_record(data, CTX)).decode()
    # The JSON numbers are the very digits the backend wrote, trailing zeros included.
    assert f'"MeterValueStart":{data["meter_value_start"]},' in body
    assert f'"MeterValueEnd":{data["meter_value_end"]},' in body
    assert f'"ConsumedEnergy":{data["consumed_energy"]}' in body
    assert f'"meterValues":[{",".join(data["meter_values_in_between"])}]' in body
    decoded = codec.decode(ChargeDetailRecord, body)
    assert decoded.consumed_energy == consumed
    assert format(decoded.consumed_energy, "f") == data["consumed_energy"]
