"""The safety rules' settings in force at this site: the code's defaults
(:mod:`speciosa.safety.settings`, declared with the rule registry), then any
``SPECIOSA_SAFETY_SETTINGS`` overrides of the deployment (JSON object), then the values an
administrator stored in the database (:class:`~speciosa.clinic.models.RuleSetting`).

An administrator changes a value on the Speciosa settings page (``/safety-settings/``),
which shows the old and new values and asks for a reason; :func:`change` stores it with an
audit entry (``setting-change``, old and new value, reason) through the write kernel.
Clinicians read the same page without the form. A change applies from the next evaluation
(the next sweep, or the next change to a patient's data).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from speciosa.safety.settings import DEFAULT_SETTINGS, SETTINGS, Setting, resolve_settings

from . import access, writes
from .models import Role, RuleSetting

__all__ = ["SettingInForce", "change", "check", "in_force", "overrides", "parse_value",
           "table"]


def _env_overrides() -> dict[str, float | int]:
    raw = os.environ.get("SPECIOSA_SAFETY_SETTINGS", "").strip()
    return json.loads(raw) if raw else {}


def _typed(name: str, value: float) -> float | int:
    """A stored value with its default's type (days stay whole numbers)."""
    whole = isinstance(DEFAULT_SETTINGS[name], int) and float(value).is_integer()
    return int(value) if whole else value


def overrides() -> dict[str, float | int]:
    """The values that differ from the code's defaults here (deployment, then database):
    what :func:`speciosa.safety.evaluate` is given. A stored name the code no longer knows
    is left out."""
    out = dict(_env_overrides())
    for name, value in RuleSetting.objects.values_list("name", "value"):
        if name in DEFAULT_SETTINGS:
            out[name] = _typed(name, value)
    return out


def in_force() -> dict[str, float | int]:
    """Every setting with the value in force."""
    return dict(resolve_settings(overrides()))


@dataclass(frozen=True)
class SettingInForce:
    """One row of the settings page."""

    setting: Setting
    value: float | int
    origin: str  # "default", "deployment" or "site"
    row: RuleSetting | None

    @property
    def default(self) -> float | int:
        return self.setting.default

    @property
    def is_convention(self) -> bool:
        """A default that is Speciosa's or a site's convention, not a published cut-off."""
        text = self.setting.source.lower()
        return "design default" in text or "convention" in text


def table() -> list[SettingInForce]:
    """Every setting, its default, the value in force and where that value comes from."""
    env = _env_overrides()
    rows = {r.name: r for r in RuleSetting.objects.select_related("changed_by")}
    out = []
    for s in SETTINGS:
        if s.name in rows:
            out.append(SettingInForce(s, _typed(s.name, rows[s.name].value), "site", rows[s.name]))
        elif s.name in env:
            out.append(SettingInForce(s, env[s.name], "deployment", None))
        else:
            out.append(SettingInForce(s, s.default, "default", None))
    return out


def parse_value(name: str, raw) -> float | int:
    """The new value of setting ``name`` from a form or the command line.

    Raises
    ------
    ValidationError
        Under ``value``: not a number, not positive, or not whole for a setting counted in
        whole units (days, points).
    """
    text = str(raw).strip()
    if "," in text:
        # never read by locale: "1,000" is one thousand in some countries, one in others
        raise ValidationError({"value": COMMA_MESSAGE})
    try:
        value = float(text)
    except ValueError:
        raise ValidationError({"value": "Enter a number, e.g. 14 or 0.5."}) from None
    if not math.isfinite(value) or value <= 0:
        raise ValidationError({"value": "Enter a number above 0."})
    if isinstance(DEFAULT_SETTINGS[name], int):
        if not value.is_integer():
            raise ValidationError({"value": f"{name} is counted in whole {_unit(name)}: "
                                            "enter a whole number."})
        value = int(value)
    highest = _highest(name)
    if highest is not None and value > highest[0]:
        raise ValidationError({"value": f"{highest[1]}: a threshold of {value:g} could never be "
                                        f"reached; enter at most {highest[0]:g}."})
    return value


COMMA_MESSAGE = ("Use a point for decimals: write 1.5, not 1,5 (and no thousands separator: "
                 "1000, not 1,000).")

#: Settings read against a warning and an urgent threshold of the same measure: the first
#: stays below the second, or the warning band is empty (or the urgent one never reached).
ORDERED = (
    ("withdrawal_cows_moderate", "withdrawal_cows_urgent"),
    ("qtc_warning_ms", "qtc_urgent_ms"),
    ("prolactin_very_high_ng_per_ml", "prolactin_prolactinoma_ng_per_ml"),
    ("liver_aminotransferase_uln_multiple", "liver_aminotransferase_urgent_uln_multiple"),
)


def _highest(name: str) -> tuple[float, str] | None:
    """The highest value a setting can take and why: an instrument's highest total for a
    threshold in its points (SOWS 64, COWS 48, from the definitions), 28 for days out of 28."""
    unit = _unit(name)
    if unit.endswith(" points"):
        from speciosa.knowledge import instruments as kinstruments

        inst = kinstruments.get_instrument(unit.split()[0].lower())
        return (inst.max_total, f"{inst.label} totals run from {inst.min_total} to "
                                f"{inst.max_total}")
    if name.endswith("_per_28"):
        return 28, f"{name} counts days out of 28"
    return None


def _out_of_order(name: str, value: float | int, values: dict) -> str | None:
    """Why ``value`` for ``name`` would put it on the wrong side of its pair, or None."""
    for low, high in ORDERED:
        if name == low and not value < values[high]:
            return (f"{name} must stay below {high} ({values[high]:g}); change {high} "
                    "first.")
        if name == high and not value > values[low]:
            return (f"{name} must stay above {low} ({values[low]:g}); change {low} first.")
    return None


def _unit(name: str) -> str:
    return next(s.unit for s in SETTINGS if s.name == name)


def check(name: str, raw_value, reason: str) -> float | int:
    """The new value of ``name`` if a change to it with this ``reason`` would be accepted.

    Raises
    ------
    ValidationError
        An unknown setting, a bad value (see :func:`parse_value`), no reason, or the value
        already in force.
    """
    if name not in DEFAULT_SETTINGS:
        raise ValidationError({"name": f"There is no setting called {name!r}."})
    errors = {}
    if not (reason or "").strip():
        errors["reason"] = "Say why the setting is changed (it is kept in the audit trail)."
    value = None
    try:
        value = parse_value(name, raw_value)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    values = in_force()
    old = values[name]
    if value is not None and value == old:
        errors["value"] = f"{name} is already {old:g}: enter a different value."
    elif value is not None and (why := _out_of_order(name, value, values)):
        errors["value"] = why
    if errors:
        raise ValidationError(errors)
    return value


def change(user, name: str, raw_value, reason: str) -> RuleSetting:
    """Store a new value of one setting (administrators only), audited with the old value,
    the new value and the reason.

    Raises
    ------
    AccessDenied
        The user is not an administrator.
    ValidationError
        As :func:`check`.
    """
    writes.require(access.has_role(user, Role.ADMIN),
                   "Only an administrator changes the safety rules' settings.")
    value = check(name, raw_value, reason)
    reason = reason.strip()
    with transaction.atomic():
        row = RuleSetting.objects.select_for_update().filter(name=name).first()
        old = in_force()[name]
        origin = "site" if row else ("deployment" if name in _env_overrides() else "default")
        before = {"name": name, "value": old, "origin": origin}
        if row is None:
            row = RuleSetting(name=name)
        row.value, row.changed_by, row.reason = value, user, reason[:500]
        row.changed_at = timezone.now()
        row.save()
        writes.audit(user, writes.Action.SETTING_CHANGE, row, before=before,
                     after={"name": name, "value": value, "origin": "site"}, reason=reason)
    return row
