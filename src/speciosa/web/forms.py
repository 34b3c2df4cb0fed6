"""Forms: parse what a person typed. Clinical validation (ranges, units, scoring) is not
repeated here; it lives in :mod:`speciosa.knowledge` and is applied by
:mod:`speciosa.clinic.services`, whose messages are put beside the fields."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal, InvalidOperation

from django import forms
from django.core import signing
from django.core.exceptions import ValidationError
from django.utils import formats
from django.utils.text import format_lazy
from django.utils.translation import get_language, gettext, gettext_lazy

from speciosa.clinic import writes
from speciosa.clinic.models import DoseUnit
from speciosa.clinic.services import COMMA_DECIMAL, SUBSTANCES
from speciosa.knowledge import instruments as kinstruments
from speciosa.knowledge import labs as klabs

#: The signer of the forms' one-time submission tokens (its own salt: a signature made for
#: anything else does not verify here).
TOKEN_SIGNER = signing.Signer(salt="speciosa.web.form-token")
BAD_TOKEN = gettext_lazy("This form was not made by this server, or it has been changed. "
                         "Reload the page and submit it again.")


def new_token() -> str:
    """A one-time submission token for a form: a random value, signed by the server."""
    return TOKEN_SIGNER.sign(uuid.uuid4().hex)


class TokenForm(forms.Form):
    """Carries a one-time submission token so that a double tap stores one record.

    The token is generated and signed by the server (:func:`new_token`); a token the client
    made up (or one of the API's keys) does not verify and the form is refused. Views pass
    :func:`submission_key` to the services, which binds the submission to the web namespace
    and the form's address."""

    token = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("token", new_token())

    def clean_token(self) -> str:
        try:
            return TOKEN_SIGNER.unsign(self.cleaned_data["token"])
        except signing.BadSignature:
            raise ValidationError(BAD_TOKEN, code="bad_token") from None

    def clean(self):
        data = super().clean()
        if "token" in self.errors:  # the field is hidden: say it above the form
            self.add_error(None, list(self.errors.pop("token")))
        return data


def submission_key(request, form: TokenForm, extra=None) -> writes.SubmissionKey:
    """The verified token of a valid ``form`` as the services' submission key: the web
    namespace, bound to the address the form was posted to and to the values sent
    (``form.cleaned_data`` without the token, and ``extra``, e.g. a formset's rows): the
    same token sent again with other values (the browser's back button keeps it) is refused
    (:class:`~speciosa.clinic.writes.SubmissionBodyMismatch`), never answered with the first
    record as if the new values had been saved."""
    values = {k: v for k, v in form.cleaned_data.items() if k != "token"}
    if extra is not None:
        values["__extra__"] = extra
    return writes.SubmissionKey("web", form.cleaned_data["token"], request.path,
                                fingerprint=_fingerprint(values))


def _fingerprint(values) -> str:
    import hashlib
    import json

    def plain(v):
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if hasattr(v, "pk"):
            return f"pk:{v.pk}"
        if v is None or isinstance(v, (bool, int, str)):
            return v
        return str(v)

    text = json.dumps(plain(values), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def apply_service_errors(form: forms.Form, exc: ValidationError, prefix: str = "") -> None:
    """Put a service's ValidationError messages beside the matching fields."""
    for key, messages in exc.message_dict.items():
        name = key[len(prefix):] if prefix and key.startswith(prefix) else key
        field = name if name in form.fields and name != "token" else None
        for message in messages:
            form.add_error(field, message)


#: A number a comma-decimal language could read two ways ("1.500": one and a half, or a
#: thousand and five hundred, with a point between the thousands): refused, never guessed.
AMBIGUOUS_NUMBER = gettext_lazy(
    "“%(value)s” is unclear: write decimals with a comma (1,5) and thousands without a "
    "point (1500).")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+")
#: "1,500" in Spanish: one and a half where Spain writes a decimal comma, a thousand and five
#: hundred where Mexico and the United States write a comma between the thousands (many of
#: Speciosa's Spanish-speaking patients). Refused, saying the two ways to write it.
AMBIGUOUS_COMMA = gettext_lazy(
    "“%(value)s” could be read two ways: write %(small)s or %(large)s, whichever you mean.")
#: digits (any script's: Thai ๑.๕ is 1.5) with at most one decimal point, nothing else
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_COMMA_THOUSANDS = re.compile(r"([+-]?[1-9]\d{0,2}),(\d{3})")


def decimal_text(value: str) -> str:
    """A number typed in the page's language, as a point-decimal string for ``Decimal``.

    Where the language writes decimals with a point (English, Thai), a comma is refused with
    :data:`~speciosa.clinic.services.COMMA_DECIMAL`, as before and as in the API. Where it
    writes a comma (Spanish): "1,5" is 1.5; "1.234,5" (points between thousands, then the
    decimal comma) is 1234.5; a single point that cannot be a thousands point ("1.5") is a
    decimal point; "1.500" could be either, and is refused (:data:`AMBIGUOUS_NUMBER`), as is
    "1,500" (:data:`AMBIGUOUS_COMMA`: a thousands comma in Mexico and the United States)."""
    text = value.strip()
    if formats.get_format("DECIMAL_SEPARATOR") != ",":
        if "," in text:
            raise ValidationError(gettext(COMMA_DECIMAL), code="comma")
        return text
    head, comma, tail = text.partition(",")
    grouped = _COMMA_THOUSANDS.fullmatch(text)
    if grouped:  # "1,500": a decimal comma, or a comma between the thousands
        small = f"{grouped[1]},{grouped[2]}".rstrip("0").rstrip(",")
        raise ValidationError(AMBIGUOUS_COMMA, code="ambiguous",
                              params={"value": text, "small": small, "large": head + tail})
    if "." in head:
        if _GROUPED.fullmatch(head):
            if not comma:
                raise ValidationError(AMBIGUOUS_NUMBER, code="ambiguous", params={"value": text})
            head = head.replace(".", "")
        elif comma:  # "1.5,2": a point and a comma, not as thousands
            raise ValidationError(AMBIGUOUS_NUMBER, code="ambiguous", params={"value": text})
    return f"{head}.{tail}" if comma else head


class DecimalInput(forms.NumberInput):
    """A number box: ``type=number`` where the language writes a decimal point; a text box
    with the decimal keyboard where it writes a comma, since a browser's number box only
    takes and shows a point (its value would be "1.5" however the page writes it)."""

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        if formats.get_format("DECIMAL_SEPARATOR") != ".":
            context["widget"]["type"] = "text"
            context["widget"]["attrs"].pop("step", None)
            context["widget"]["attrs"].setdefault("inputmode", "decimal")
        return context


class LocaleDecimalField(forms.DecimalField):
    """A number with the decimal separator of the page's language (:func:`decimal_text`),
    shown back the same way ("1,5" in Spanish, "1.5" in English). The API reads points only
    (:mod:`speciosa.api.fields`), whatever the language."""

    widget = DecimalInput

    def __init__(self, *args, **kwargs):
        widget = kwargs.get("widget")
        if widget is None or type(widget) is forms.NumberInput:
            attrs = getattr(widget, "attrs", None) or {"inputmode": "decimal", "step": "any"}
            kwargs["widget"] = DecimalInput(attrs=attrs)
        kwargs.setdefault("localize", True)  # the box shows the value in the page's language
        super().__init__(*args, **kwargs)

    def prepare_value(self, value):
        """A stored number without its trailing zeros (1.500 is shown as 1.5, "1,5" in
        Spanish: "1,500" would read as a thousand and five hundred there)."""
        if isinstance(value, Decimal) and value.is_finite():
            text = format(value.normalize(), "f")
            return text.replace(".", formats.get_format("DECIMAL_SEPARATOR"))
        return value

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        attrs["step"] = "any"  # not the field's decimal places: the number box takes any
        return attrs

    def to_python(self, value):
        if value in self.empty_values:
            return None
        text = decimal_text(str(value))
        if not _PLAIN_NUMBER.fullmatch(text):
            # Decimal() also reads "1_5" as 15 and "1e3" as 1000: a slip of the thumb is
            # never a number ten or a thousand times the one meant
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        if not number.is_finite():
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return number


#: The name the forms knew it by: it read a point only; it now reads the page's language.
PointDecimalField = LocaleDecimalField


class DoseForm(forms.Form):
    time = forms.TimeField(label=gettext_lazy("Time"), widget=forms.TimeInput(attrs={"type": "time"}), required=False)
    amount = PointDecimalField(label=gettext_lazy("Amount"), required=False, max_digits=9, decimal_places=3)
    unit = forms.ChoiceField(label=gettext_lazy("Unit"), choices=DoseUnit.choices, initial="g")
    product = forms.CharField(label=gettext_lazy("Product"), required=False, max_length=120)
    mitragynine_percent = PointDecimalField(
        label=gettext_lazy("Mitragynine % (if on the label)"), required=False, max_digits=5, decimal_places=2)
    grams_per_capsule = PointDecimalField(
        label=gettext_lazy("Grams per capsule"), required=False, max_digits=6, decimal_places=3)
    # shown once the service asked about this dose (plausibility, capsule size, a repeat)
    confirmed_unusual = forms.BooleanField(label=gettext_lazy("Yes, this is right: save it as it is"), required=False)

    #: the service's questions about this dose, set by the view (shown with the check box)
    asked = False

    def is_blank(self) -> bool:
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        return data.get("amount") in (None, "") and not data.get("time")

    def clean(self):
        data = super().clean()
        if data.get("amount") not in (None, "") and not data.get("time"):
            self.add_error("time", gettext("Give the time you took this dose."))
        if data.get("time") and data.get("amount") in (None, ""):
            self.add_error("amount", gettext("Give the amount of this dose."))
        return data


#: The most doses one diary day takes (the API's limit too: ``DiaryIn.doses``).
MAX_DOSES = 12


class _DoseFormSetBase(forms.BaseFormSet):
    default_error_messages = {
        "too_many_forms": format_lazy(gettext_lazy(
            "One diary day takes at most {n} doses; nothing was saved. Remove some rows (or add "
            "the rest to another day's diary)."), n=MAX_DOSES),
        "missing_management_form": gettext_lazy(
            "The form was incomplete; nothing was saved. Reload the page and try again."),
    }


# validate_max: more than MAX_DOSES rows is an error; absolute_max: however many rows the
# post claims (TOTAL_FORMS=100000), Django builds at most MAX_DOSES forms and refuses the rest
DoseFormSet = forms.formset_factory(DoseForm, formset=_DoseFormSetBase, extra=1, max_num=MAX_DOSES,
                                    validate_max=True, absolute_max=MAX_DOSES)


def dose_formset(data=None, *, add_row: bool = False, initial=None):
    """The diary's dose rows: one blank row on a new page; as posted otherwise. ``add_row``
    (the "Add another dose" button without JavaScript) gives the posted rows and one more."""
    if data is not None and add_row:
        data = data.copy()
        key = "doses-TOTAL_FORMS"
        try:
            total = int(data.get(key, "1"))
        except ValueError:
            total = 1
        data[key] = str(max(0, min(total, MAX_DOSES - 1)) + 1)
    return DoseFormSet(data, prefix="doses", initial=initial)


def valid_zone(name) -> str:
    """``name`` if it is an IANA time zone this server knows, else ``""`` (then the clinic's
    zone is used, and the page says so)."""
    import zoneinfo

    name = str(name or "").strip()
    if not name or len(name) > 64:
        return ""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return ""
    return name


class DiaryForm(TokenForm):
    craving = forms.TypedChoiceField(
        label=gettext_lazy("Craving right now (0 = none, 10 = worst)"), coerce=int, required=False, empty_value=None,
        choices=[(i, str(i)) for i in range(11)], widget=forms.RadioSelect)
    side_effects = forms.MultipleChoiceField(label=gettext_lazy("Since yesterday, have you noticed…"),
                                             required=False, widget=forms.CheckboxSelectMultiple)
    side_effect_other = forms.CharField(label=gettext_lazy("Anything else"), required=False, max_length=500)
    substances = forms.MultipleChoiceField(label=gettext_lazy("Other substances used today"), required=False,
                                           choices=list(SUBSTANCES.items()),
                                           widget=forms.CheckboxSelectMultiple)
    substance_detail = forms.CharField(label=gettext_lazy("Details (optional)"), required=False, max_length=200)
    # the browser's IANA time zone (diary.js fills it in); the times are read in it when it
    # differs from the clinic's, and the page says which zone it used
    browser_tz = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def clean_browser_tz(self) -> str:
        return valid_zone(self.cleaned_data.get("browser_tz"))

    def __init__(self, *args, sex: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        # the checklist in the patient's language (Speciosa's own wording, translated); the
        # SOWS, a validated scale, in English until the site loads a validated translation
        language = get_language()
        self.side_effects_shown = kinstruments.localized("side-effects", language)
        checklist = self.side_effects_shown.instrument
        self.fields["side_effects"].choices = [
            (i.id, i.label) for i in checklist.items if not (i.id == "menstrual-change" and sex == "male")]
        self.sows_shown = kinstruments.localized("sows", language)
        sows = self.sows_shown.instrument
        self.sows_fields = []
        for item in sows.items:
            name = f"sows-{item.id}"
            self.fields[name] = forms.TypedChoiceField(
                label=item.label, required=False, coerce=int, empty_value=None,
                choices=[(v.value, f"{v.value}") for v in item.values], widget=forms.RadioSelect)
            self.sows_fields.append(name)
        self.sows_anchors = " · ".join(f"{v.value} {v.anchor}" for v in sows.items[0].values)

    def sows_bound_fields(self):
        return [self[name] for name in self.sows_fields]

    # The diary has ~130 radio buttons and check boxes. Rendering each through Django's widget
    # templates took most of the page's time, so the template writes the inputs itself from
    # these plain option lists (same names, values and ids as the widgets would produce).
    def options(self, name: str) -> list[dict]:
        bound = self[name]
        value = bound.value()
        chosen = {str(v) for v in value} if isinstance(value, list | tuple) else {str(value)}
        return [{"value": v, "label": label, "id": f"{bound.auto_id}_{i}", "checked": str(v) in chosen}
                for i, (v, label) in enumerate(bound.field.choices)]

    @property
    def craving_options(self):
        return self.options("craving")

    @property
    def side_effect_options(self):
        return self.options("side_effects")

    @property
    def substance_options(self):
        return self.options("substances")

    @property
    def sows_rows(self):
        return [(self[name], self.options(name)) for name in self.sows_fields]

    def sows_items(self) -> dict[str, int | None]:
        return {name[5:]: self.cleaned_data.get(name) for name in self.sows_fields}


class AssessmentForm(TokenForm):
    """Built from an instrument definition: one choice per item, labelled with its anchors."""

    at = forms.DateTimeField(label=gettext_lazy("Time of assessment"), required=False,
                             widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    note = forms.CharField(label=gettext_lazy("Comment"), required=False, max_length=500)

    def __init__(self, *args, instrument: kinstruments.Instrument, **kwargs):
        super().__init__(*args, **kwargs)
        self.instrument = instrument
        self.item_fields = []
        for item in instrument.items:
            name = f"item-{item.id}"
            self.fields[name] = forms.TypedChoiceField(
                label=item.label, required=False, coerce=int, empty_value=None,
                choices=[(v.value, f"{v.value} — {v.anchor}") for v in item.values],
                widget=forms.RadioSelect)
            self.item_fields.append(name)
        if instrument.id == "cows":
            self.fields["pulse_bpm"] = forms.IntegerField(
                label=gettext_lazy("…or the measured resting pulse (beats/min)"), required=False,
                min_value=20, max_value=250)

    def item_bound_fields(self):
        return [self[n] for n in self.item_fields]

    def items(self) -> dict[str, int | None]:
        data = {n[5:]: self.cleaned_data.get(n) for n in self.item_fields}
        bpm = self.cleaned_data.get("pulse_bpm")
        if self.instrument.id == "cows" and bpm is not None:
            pulse_item = next(i.id for i in self.instrument.items if "pulse" in i.id)
            data[pulse_item] = kinstruments.cows_pulse_score(bpm)
        return data


def _lab_choices():
    return [(lab.code, lab.name) for lab in klabs.all_labs()]


def _unit_choices():
    """Every unit of the catalogue, labelled as people write it (``mIU/L``, not ``m[IU]/L``);
    the value sent stays the UCUM code."""
    units = sorted({u for lab in klabs.all_labs() for u in lab.units})
    return [("", "— unit —")] + [(u, klabs.unit_display(u)) for u in units]


class UnitSelect(forms.Select):
    """A unit picker that offers only the units of the chosen test: each option names the
    tests that accept it (``data-labs``); the units of other tests are hidden for the test
    chosen when the page is made, and ``lab_form.js`` follows a change of test."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.labs_of: dict[str, list[str]] = {}
        for lab in klabs.all_labs():
            for unit in lab.units:
                self.labs_of.setdefault(unit, []).append(lab.code)
        self.chosen_lab = ""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value:
            labs = self.labs_of.get(str(value), [])
            option["attrs"]["data-labs"] = " ".join(labs)
            if self.chosen_lab and self.chosen_lab not in labs:
                option["attrs"].update(hidden=True, disabled=True)
        return option


class LabForm(TokenForm):
    lab = forms.ChoiceField(label=gettext_lazy("Test"))
    collected_at = forms.DateTimeField(label=gettext_lazy("Sample taken"),
                                       widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    value = PointDecimalField(label=gettext_lazy("Value"), required=False, max_digits=12, decimal_places=4)
    unit = forms.ChoiceField(label=gettext_lazy("Unit"), required=False)
    comparator = forms.ChoiceField(
        label=gettext_lazy("Reported as"), required=False,
        choices=[("", gettext_lazy("the value")), ("<", gettext_lazy("below (<)")),
                 ("<=", gettext_lazy("at or below (<=)")), (">=", gettext_lazy("at or above (>=)")),
                 (">", gettext_lazy("above (>)"))])
    reference_low = PointDecimalField(
        label=gettext_lazy("Laboratory range: low"), required=False, max_digits=12, decimal_places=4)
    reference_high = PointDecimalField(
        label=gettext_lazy("Laboratory range: high"), required=False, max_digits=12, decimal_places=4)
    reference_unit = forms.ChoiceField(label=gettext_lazy("Range unit (if not the value's)"), required=False)
    iu_factor = PointDecimalField(
        label=gettext_lazy("Prolactin assay: mIU/L per ng/mL (as the laboratory states)"), required=False,
        max_digits=6, decimal_places=3)
    result = forms.ChoiceField(label=gettext_lazy("Result (drug screens, pregnancy test)"), required=False,
                               choices=[("", "—"), ("negative", gettext_lazy("negative")),
                                        ("positive", gettext_lazy("positive"))])
    method = forms.ChoiceField(label=gettext_lazy("Method (drug screens)"), required=False,
                               choices=[("", "—"), ("screen", gettext_lazy("screen")),
                                        ("confirmation", gettext_lazy("confirmation"))])
    confirmed_unusual = forms.BooleanField(
        label=gettext_lazy("I have checked this unusual value and unit, and it is right"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lab"].choices = _lab_choices()
        chosen = (self.data.get("lab") if self.is_bound else self.initial.get("lab")) or ""
        for name in ("unit", "reference_unit"):
            field = self.fields[name]
            field.widget = UnitSelect(attrs={"data-units-of": "id_lab"})
            field.choices = _unit_choices()
            field.widget.chosen_lab = chosen


class NoteForm(TokenForm):
    text = forms.CharField(label=gettext_lazy("Note"), widget=forms.Textarea(attrs={"rows": 4}), max_length=5000)


class CorrectionForm(TokenForm):
    reason = forms.CharField(label=gettext_lazy("Reason for the correction"), max_length=500)
    value = PointDecimalField(label=gettext_lazy("Corrected value"), required=False, max_digits=12, decimal_places=4)
    unit = forms.CharField(label=gettext_lazy("Corrected unit"), required=False, max_length=32)
    # a lab's range again (needed when the unit of a result with the laboratory's range changes)
    reference_low = PointDecimalField(label=gettext_lazy("Laboratory range: low"), required=False,
                                      max_digits=12, decimal_places=4)
    reference_high = PointDecimalField(label=gettext_lazy("Laboratory range: high"), required=False,
                                       max_digits=12, decimal_places=4)
    reference_unit = forms.CharField(label=gettext_lazy("Range unit (if not the value's)"), required=False,
                                     max_length=32)
    amount = PointDecimalField(label=gettext_lazy("Corrected amount"), required=False, max_digits=9, decimal_places=3)
    text = forms.CharField(label=gettext_lazy("Corrected text"), required=False,
                           widget=forms.Textarea(attrs={"rows": 3}))
    name = forms.ChoiceField(label=gettext_lazy("Corrected substance"), required=False,
                             choices=[("", gettext_lazy("— unchanged —")), *SUBSTANCES.items()])
    detail = forms.CharField(label=gettext_lazy("Corrected details"), required=False, max_length=200)
    confirmed_unusual = forms.BooleanField(
        label=gettext_lazy("I have checked this unusual value and unit, and it is right"), required=False)
    retract = forms.BooleanField(label=gettext_lazy("Withdraw this entry (it was made in error)"), required=False)


class MyCorrectionForm(TokenForm):
    """A patient corrects or removes an entry of their own diary (a dose: any of its fields)."""

    time = forms.TimeField(label=gettext_lazy("Time"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                           required=False)
    amount = PointDecimalField(label=gettext_lazy("Amount"), required=False, max_digits=9, decimal_places=3)
    unit = forms.ChoiceField(label=gettext_lazy("Unit"), choices=DoseUnit.choices, required=False)
    browser_tz = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)
    product = forms.CharField(label=gettext_lazy("Product"), required=False, max_length=120)
    mitragynine_percent = PointDecimalField(
        label=gettext_lazy("Mitragynine % (if on the label)"), required=False, max_digits=5, decimal_places=2)
    grams_per_capsule = PointDecimalField(
        label=gettext_lazy("Grams per capsule"), required=False, max_digits=6, decimal_places=3)
    detail = forms.CharField(label=gettext_lazy("Details"), required=False, max_length=200)
    confirmed_unusual = forms.BooleanField(label=gettext_lazy("Yes, this is right: save it as it is"), required=False)
    reason = forms.CharField(label=gettext_lazy("What was wrong? (your care team sees this)"), max_length=500,
                             initial=gettext_lazy("I entered it wrong"))
    remove = forms.BooleanField(label=gettext_lazy("Remove this entry (it was a mistake)"), required=False)

    def clean_browser_tz(self) -> str:
        return valid_zone(self.cleaned_data.get("browser_tz"))
