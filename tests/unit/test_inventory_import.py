"""The inventory file's record checks (no database): every error named, typos caught, ranges computed right."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from policy.inventory_import import InventoryError, address_range, check_records, parse_inventory, to_bytes


def errors(data: Any) -> list[str]:
    return check_records(data)[1]


def good() -> dict[str, Any]:
    return {
        "customers": [{"id": "C1", "name": "Alice", "identity_verified": True, "note": "VIP"}],
        "services": [{"id": "S1", "customer_id": "C1", "kind": "vps"}],
        "resources": [{"service_id": "S1", "type": "cidr", "value": "192.0.2.77/26"}],
    }


def test_a_good_file_gives_rows_with_ranges_and_keeps_extra_customer_fields() -> None:
    (cust, svc, res), problems = check_records(good())
    assert problems == []
    assert cust[0]["extra"] == {"note": "VIP"} and cust[0]["identity_verified"] is True
    assert svc == [{"id": "S1", "customer_id": "C1", "kind": "vps", "name": ""}]
    assert res[0]["value"] == "192.0.2.64/26"
    assert res[0]["addr_family"] == 4 and res[0]["prefix_len"] == 26
    assert res[0]["range_start"] == to_bytes(int(ipaddress.ip_address("192.0.2.64")))
    assert res[0]["range_end"] == to_bytes(int(ipaddress.ip_address("192.0.2.127")))


def test_an_ip_is_a_range_of_one_address_and_names_have_no_range() -> None:
    v6 = address_range("ip", "2001:db8::1")
    assert v6["addr_family"] == 6 and v6["prefix_len"] == 128 and v6["range_start"] == v6["range_end"]
    assert set(address_range("domain", "shop.example").values()) == {None}


def test_range_bytes_order_like_the_addresses_they_hold() -> None:
    addresses = ["0.0.0.1", "10.0.0.0", "192.0.2.255", "255.255.255.255", "2001:db8::", "2001:db8::1:0", "ffff::"]
    keys = [to_bytes(int(ipaddress.ip_address(a))) for a in addresses]
    assert keys == sorted(keys) and all(len(k) == 16 for k in keys)


@pytest.mark.parametrize("value", ["false", "true", 0, 1, "yes"])
def test_identity_verified_must_be_a_json_boolean(value: Any) -> None:
    data = good()
    data["customers"][0]["identity_verified"] = value
    assert any("identity_verified must be true or false" in e for e in errors(data))


def test_identity_verified_absent_or_null_means_not_verified() -> None:
    data = good()
    data["customers"][0]["identity_verified"] = None
    data["customers"].append({"id": "C2"})
    (cust, _, _), problems = check_records(data)
    assert problems == [] and [c["identity_verified"] for c in cust] == [False, False]


def test_a_misspelled_field_is_an_error_that_suggests_the_right_one() -> None:
    data = good()
    data["customers"][0]["identity_verfied"] = True
    data["resources"][0]["valid_form"] = "2024-01-01"
    assert errors(data) == [
        "customers[0] (customer C1): unknown field 'identity_verfied' (did you mean 'identity_verified'?)",
        "resources[0] (service S1): unknown field 'valid_form' (did you mean 'valid_from'?)",
    ]


def test_unknown_top_level_keys_and_sections_that_are_not_lists_are_errors() -> None:
    assert errors({"customer": [], "services": {}, "resources": []}) == [
        "inventory: unknown top-level key 'customer' (did you mean 'customers'?)",
        "services: must be a list, not dict",
    ]
    assert errors({}) == ["inventory: none of customers, services, resources is present"]
    assert errors([]) == ["inventory: must be a JSON object with customers, services, resources"]


def test_bad_values_and_dates_name_their_record() -> None:
    data = good()
    data["resources"] += [
        {"service_id": "S1", "type": "ipv4", "value": "192.0.2.1"},
        {"service_id": "S1", "type": "ip", "value": "192.0.2.1", "valid_from": "yesterday"},
        {"service_id": "S1", "type": "ip", "value": "192.0.2.2", "valid_from": "2025-01-01", "valid_to": "2024-01-01"},
        {"type": "domain", "value": "shop.example"},
        "192.0.2.3",
    ]
    found = errors(data)
    assert found[0].startswith("resources[1] (service S1): unknown resource type 'ipv4'")
    assert found[1] == "resources[2] (service S1): valid_from: 'yesterday' is not an ISO 8601 date"
    assert found[2].startswith("resources[3] (service S1): valid_to 2024-01-01T00:00:00+00:00 is not after valid_from")
    assert found[3:] == ["resources[4]: service_id is required", "resources[5]: must be an object"]


def test_the_message_lists_the_first_errors_and_counts_the_rest() -> None:
    data = good()
    data["resources"] = [{"service_id": "S1", "type": "ip", "value": f"192.0.2.{i}x"} for i in range(25)]
    with pytest.raises(InventoryError) as info:
        parse_inventory(data)
    message = str(info.value)
    assert message.startswith("inventory not imported, 25 error(s):")
    assert "resources[19] (service S1)" in message and "resources[20]" not in message
    assert message.endswith("… and 5 more")
