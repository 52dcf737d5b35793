"""Safeguarding minors: a local classifier of students' messages (classifier.py),
severity tiers (0 nothing, 1 concern, 2 urgent), urgent alerts that reach a person and
escalate until acknowledged (services.py), who may read them (selectors.py), and the
pages for alerts and the school's own examples (views.py)."""
