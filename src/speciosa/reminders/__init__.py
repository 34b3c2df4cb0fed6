"""Reminders (issue 16): at the time the patient chooses, in their zone, outside their quiet
hours, by Web Push, e-mail or SMS, once per due item and channel.

- :mod:`.timing` (pure, no Django): when a reminder for a due item goes out: the chosen time
  on its due day in the patient's zone (a time that does not exist on a daylight-saving day is
  the first one after it; one that happens twice is the first), held while quiet hours last;
  a diary reminder is brought forward so that it goes out before the clinician's missed-diary
  alert (SAF-DIARY-GAP) can fire.
- :mod:`.content`: the one text every channel sends, "You have something to complete in
  Speciosa." with a link to ``/me/``: no clinical content, no instrument, not the word kratom
  (42 CFR Part 2).
- :mod:`.channels` and :mod:`.sms`: Web Push (pywebpush, VAPID), e-mail (Django's mail
  framework), SMS (a pluggable backend; console and file backends shipped).
- :mod:`.services`: the patient's preferences (audited), their push devices, the delivery
  run (:func:`~.services.remind`) and the delivery log.

A reminder is sent **at most once** per delivery key ``(patient, item, due_at, channel)``:
the :class:`~.models.Delivery` row for the key is claimed in its own committed transaction
(a database unique constraint) before anything is sent, so a retried, redelivered or
duplicated task finds the row and sends nothing again. The periodic task is
``speciosa.tasks.send_reminders`` in the Celery beat schedule (``SPECIOSA_REMINDERS_EVERY_S``,
default 300 s), as for the safety sweep; ``speciosa reminders send`` runs it once.
"""
