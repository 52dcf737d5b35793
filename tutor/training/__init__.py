"""Teachers' review decisions as training data for the school's own model (issue 19).

Only with the school's consent (School.training_consent, off by default), only what
retention still keeps, and pseudonymised: see dataset.py. The fine-tune and the
evaluation that read these exports live in inference/ (they import torch)."""
