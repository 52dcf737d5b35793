"""What the permission matrix needs of sign-in services and platforms: one of each for the
school and for the other school, pointing at closed ports (nothing answers, nothing waits)."""

from __future__ import annotations

import uuid

from lti_tool.models import LtiContext, LtiDeployment, LtiRegistration

from classrooms.identity.models import CourseLink, IdentityProvider, LtiPlatform, SchoolSignIn

NOWHERE = "http://127.0.0.1:9"  # the discard port: connections are refused at once


def _platform(school, name: str) -> LtiPlatform:
    registration = LtiRegistration.objects.create(
        name=name,
        uuid=uuid.uuid4(),
        issuer=f"{NOWHERE}/{name}",
        client_id=f"client-{name}",
        auth_url=f"{NOWHERE}/auth",
        token_url=f"{NOWHERE}/token",
        keyset_url=f"{NOWHERE}/jwks",
    )
    return LtiPlatform.objects.create(registration=registration, school=school)


def add_identity_world(w) -> None:
    w.ent = IdentityProvider.objects.create(
        key=f"s{w.school.id}-ent", name="ENT", protocol="cas", school=w.school, server_url=f"{NOWHERE}/cas"
    )
    w.oidc = IdentityProvider.objects.create(
        key="proconnect", name="ProConnect", protocol="oidc", issuer=NOWHERE, client_id="tutor"
    )
    w.sign_in = SchoolSignIn.objects.create(school=w.school, provider=w.ent)
    foreign_ent = IdentityProvider.objects.create(
        key=f"s{w.other_school.id}-ent",
        name="Other ENT",
        protocol="cas",
        school=w.other_school,
        server_url=f"{NOWHERE}/cas",
    )
    w.foreign_sign_in = SchoolSignIn.objects.create(school=w.other_school, provider=foreign_ent)
    w.platform = _platform(w.school, "moodle")
    w.foreign_platform = _platform(w.other_school, "canvas")
    w.deployment = LtiDeployment.objects.create(registration=w.platform.registration, deployment_id="1")
    w.foreign_deployment = LtiDeployment.objects.create(registration=w.foreign_platform.registration, deployment_id="1")
    context = LtiContext.objects.create(deployment=w.deployment, id_on_platform="c1", memberships_url=f"{NOWHERE}/n")
    w.course_link = CourseLink.objects.create(context=context, classroom=w.classroom)
    foreign_context = LtiContext.objects.create(deployment=w.foreign_deployment, id_on_platform="c2")
    w.foreign_course_link = CourseLink.objects.create(context=foreign_context, classroom=w.foreign_classroom)
