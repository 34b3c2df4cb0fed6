"""Secure messages between a patient and their care team (issue 16).

Threads belong to one patient; the patient and the clinicians of the patient's care team
read and write them, nobody else (another user gets a 404). A message is part of the record:
it is never edited or deleted, and its creation is in the audit trail; a clinician opening a
thread is audited as a view. Notifications (e-mail, from the task queue, once per message)
say only that a message is waiting: no content, no name, not the word kratom (42 CFR Part 2).
Every message page tells the patient that messages are not watched around the clock and
shows the site's emergency and crisis numbers.
"""
