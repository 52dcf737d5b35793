"""Signing in with a school's own accounts, and opening the tutor from its learning platform.

- `oidc`: OpenID Connect providers (ProConnect, an académie's, Keycloak, Entra ID, Google).
- `cas`: CAS servers (the ENTs).
- `lti`: LTI 1.3 platforms (Moodle/Éléa, Canvas): registration, launch, deep linking, rosters.

Every way in ends in `services.sign_in_resolve` (OpenID Connect and CAS) or
`services.platform_person` (LTI): an account is found by the service's stable subject,
never by e-mail alone, and is created only where the school allows it.
"""
