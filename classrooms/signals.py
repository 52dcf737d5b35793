"""What classrooms tells the apps built on it, without importing them.

classrooms is the bottom layer (inference -> tutor -> classrooms): it knows schools,
classes and people, not conversations. tutor connects to these signals (tutor/signals.py)
for the parts that are its own: closing open sockets, and a student's conversations in
their data export and before their deletion.
"""

from django.dispatch import Signal

# Sent after the change is committed, with user_ids=[...]: what these people may reach
# changed (removed from a class, class archived, account deactivated or deleted, new
# password): their open sockets re-check access at once.
access_changed = Signal()

# Sent after the change is committed, with classroom_id=...: the class was paused or
# opened again, or its hours changed: its students' open chats say at once whether they
# may ask.
class_availability_changed = Signal()

# Sent with student=<User> while their data is exported; each receiver returns a dict of
# sections to add to the export ({"conversations": [...]}), as the student could see them.
student_data_exported = Signal()

# Sent with student=<User> before the deletion page asks for confirmation; each receiver
# returns a dict of counts of what deleting them also deletes ({"conversations": 3}).
student_data_counted = Signal()
