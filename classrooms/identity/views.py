"""Signing in with a school's accounts, the tutor's side of LTI, and the school admin's
sign-in page. Thin: find what is asked for (404 for "not yours"), let the protocol module
check the other side's answer, one service call, answer.

Every refusal is shown in plain words, logged with its reason, kept for the school admin,
and leaves nothing behind: no session, no account.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from lti_tool.models import Key, LtiRegistration
from lti_tool.utils import sync_data_from_launch

from classrooms import services as classroom_services
from classrooms.identity import cas, checks, forms, lti, oidc, selectors, services
from classrooms.identity.errors import SignInRefused
from classrooms.identity.middleware import FRAME_SESSION_KEY, allow_form_target, allow_in_frame
from classrooms.identity.models import CourseLink, IdentityProvider, LtiPlatform
from classrooms.models import Membership, School, User
from classrooms.selectors import classrooms_taught_by
from classrooms.views import school_admin_required

BACKEND = "classrooms.identity.backends.SignInServiceBackend"
CAS_FLOW_KEY = "identity_cas_flow"
CHOOSE_SALT = "identity.lti.choose-class"
CHOOSE_VALID_SECONDS = 30 * 60


def _refused(
    request: HttpRequest,
    refusal: SignInRefused,
    *,
    school: School | None = None,
    provider: IdentityProvider | None = None,
    platform: LtiPlatform | None = None,
    frame_origins: list[str] | None = None,
) -> HttpResponse:
    services.problem_record(refusal=refusal, school=school, provider=provider, platform=platform)
    status = 502 if refusal.reason in ("provider_down", "platform_down") else 403
    response = render(request, "identity/refused.html", {"message": refusal.message}, status=status)
    if frame_origins:
        allow_in_frame(response, frame_origins)
    return response


def _safe_next(request: HttpRequest, target: str | None) -> str:
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("home")


def _signed_in(request: HttpRequest, person: User, via: dict, school_id: int, next_url: str) -> HttpResponse:
    login(request, person, backend=BACKEND)
    request.session[oidc.SESSION_SIGNED_IN_VIA] = via
    response = redirect(next_url)
    # The login page shows this school's buttons next time.
    response.set_cookie(
        selectors.SCHOOL_COOKIE,
        str(school_id),
        max_age=365 * 24 * 3600,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
    )
    return response


# Signing in with a school's OpenID Connect or CAS service


@require_GET
def sign_in_start(request: HttpRequest, sign_in_id: int) -> HttpResponse:
    """The "Sign in with …" button: off to the school's service. With ?link=1, a signed-in
    person links the service to their account instead."""
    sign_in = selectors.sign_in_to_start(sign_in_id)
    provider = sign_in.provider
    link_user_id = request.user.id if request.GET.get("link") and request.user.is_authenticated else None
    next_url = _safe_next(request, request.GET.get("next"))
    if link_user_id:
        next_url = reverse("identity_sign_in_methods")
    if provider.protocol == IdentityProvider.Protocol.CAS:
        request.session[CAS_FLOW_KEY] = {"sign_in": sign_in.id, "link": link_user_id, "next": next_url}
        return redirect(cas.login_url(request, provider))
    try:
        return redirect(oidc.authorization_url(request, sign_in, next_url=next_url, link_user_id=link_user_id))
    except SignInRefused as refusal:
        return _refused(request, refusal, school=sign_in.school, provider=provider)


@require_GET
def oidc_callback(request: HttpRequest, key: str) -> HttpResponse:
    """Where an OpenID Connect provider sends the browser back (the redirect URI)."""
    provider = selectors.provider_by_key(key, IdentityProvider.Protocol.OIDC)
    school = provider.school
    try:
        flow, record = oidc.take_flow(request, provider)
        sign_in = flow["sign_in_obj"]
        school = sign_in.school
        subject, claims, id_token = oidc.claims_from_callback(request, provider, record)
        link_to = _link_target(request, flow.get("link"))
        person = services.sign_in_resolve(sign_in=sign_in, subject=subject, claims=claims, link_to=link_to)
    except SignInRefused as refusal:
        return _refused(request, refusal, school=school, provider=provider)
    via = {"provider": provider.id, "id_token": id_token}
    return _signed_in(request, person, via, person.school_id, flow.get("next") or reverse("home"))


def _link_target(request: HttpRequest, user_id: int | None) -> User | None:
    """Linking needs the same person still signed in as when they asked."""
    if not user_id:
        return None
    if not (request.user.is_authenticated and request.user.id == user_id):
        raise SignInRefused(
            "state", _("You were signed out while linking. Sign in and start again."), detail=_("Link abandoned.")
        )
    return request.user


@csrf_exempt  # the CAS server's sign-out request is a server-to-server POST
@require_http_methods(["GET", "POST"])
def cas_callback(request: HttpRequest, key: str) -> HttpResponse:
    """The CAS service address: the browser comes back with a ticket (GET); the CAS server
    sends its single sign-out request here too (POST)."""
    provider = selectors.provider_by_key(key, IdentityProvider.Protocol.CAS)
    if request.method == "POST":
        if not request.POST.get("logoutRequest"):
            return HttpResponse(status=400)
        cas.single_sign_out(request, provider)
        return HttpResponse("ok", content_type="text/plain")
    flow = request.session.pop(CAS_FLOW_KEY, None)
    school = provider.school
    try:
        if not flow:
            raise SignInRefused(
                "state",
                _("This sign-in has expired or was already used. Start again from the sign-in page."),
                detail=_("A CAS ticket arrived for a browser that did not start a sign-in."),
            )
        sign_in = selectors.sign_in_of_flow(flow["sign_in"], provider)
        if sign_in is None:
            raise SignInRefused("state", _("This sign-in has expired. Start again."), detail=_("Unknown sign-in."))
        school = sign_in.school
        ticket = request.GET.get("ticket", "")
        subject, attributes = cas.validate(request, provider, ticket)
        link_to = _link_target(request, flow.get("link"))
        person = services.sign_in_resolve(sign_in=sign_in, subject=subject, claims=attributes, link_to=link_to)
    except SignInRefused as refusal:
        return _refused(request, refusal, school=school, provider=provider)
    response = _signed_in(request, person, {"provider": provider.id}, person.school_id, flow.get("next") or "/")
    cas.remember_ticket(request.session, ticket)
    return response


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    """Sign out here, and at the school's service too where it offers that (OpenID Connect
    RP-initiated logout, CAS logout)."""
    after = request.build_absolute_uri(reverse("login"))
    target = reverse("login")
    via = request.session.get(oidc.SESSION_SIGNED_IN_VIA) or {}
    provider = IdentityProvider.objects.filter(pk=via.get("provider")).first() if via else None
    if provider is not None and provider.protocol == IdentityProvider.Protocol.OIDC and via.get("id_token"):
        target = oidc.logout_url(request, provider, via["id_token"], after) or target
    elif provider is not None and provider.protocol == IdentityProvider.Protocol.CAS:
        target = cas.logout_url(request, provider, after)
        from django_cas_ng.models import SessionTicket

        SessionTicket.objects.filter(session_key=request.session.session_key).delete()
    logout(request)
    return redirect(target)


@login_required
@require_GET
def sign_in_methods(request: HttpRequest) -> HttpResponse:
    """A person's ways in: the school's services they linked, and those they may link."""
    linked = list(selectors.identities_of(request.user))
    linked_ids = {identity.provider_id for identity in linked}
    school = request.user.school
    available = [s for s in selectors.sign_in_buttons(school) if s.provider_id not in linked_ids] if school else []
    return render(request, "identity/sign_in_methods.html", {"linked": linked, "available": available})


# LTI 1.3: the tool's side


@require_GET
def lti_jwks(request: HttpRequest) -> JsonResponse:
    """The tool's public keys: platforms check the tool's signatures with them."""
    lti.tool_key()
    return JsonResponse(Key.objects.as_jwks())


@require_GET
def lti_register(request: HttpRequest, token: str) -> HttpResponse:
    """Dynamic registration: the address a platform's admin pastes into "add a tool by URL"
    (Moodle: Site administration › Plugins › External tool › Manage tools)."""
    config_url = request.GET.get("openid_configuration", "")
    registration_token = request.GET.get("registration_token", "")
    platform_origin = _origin(config_url)
    invitation = selectors.invitation_usable(token)
    try:
        if invitation is None:
            raise SignInRefused(
                "invitation",
                _("This registration address was already used or has expired. Ask the school admin for a new one."),
                detail=_("A platform tried to register with an address that was used or expired."),
            )
        if not (config_url and registration_token):
            raise SignInRefused(
                "bad_request",
                _("Open this address from the learning platform's “add a tool by URL”, not in a browser."),
                detail=_("The registration address was opened without the platform's parameters."),
            )
        config = lti.platform_configuration(config_url, registration_token)
        registration_uuid = uuid.uuid4()
        name = _platform_name(config)
        payload = lti.tool_registration(request, name=_("School tutor"))
        payload["initiate_login_uri"] = request.build_absolute_uri(
            reverse("identity_lti_login", args=[registration_uuid])
        )
        lti.tool_key()
        client_id, deployment_id = lti.register_with_platform(config, registration_token, payload)
        platform = services.platform_register(
            invitation=invitation,
            config=config,
            registration_uuid=registration_uuid,
            client_id=client_id,
            deployment_id=deployment_id,
            name=name,
        )
    except SignInRefused as refusal:
        return _refused(
            request,
            refusal,
            school=invitation.school if invitation else None,
            frame_origins=[platform_origin] if platform_origin else None,
        )
    response = render(request, "identity/lti_registered.html", {"platform": platform})
    allow_in_frame(response, platform.frame_origins())
    return response


def _origin(url: str) -> str:
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""


def _platform_name(config: dict) -> str:
    product = (config.get("https://purl.imsglobal.org/spec/lti-platform-configuration") or {}).get(
        "product_family_code", ""
    )
    host = urlsplit(config["issuer"]).netloc
    return f"{product.capitalize()} ({host})" if product else host


@csrf_exempt  # a platform's form or link starts it; the state cookie and nonce protect the flow
@require_http_methods(["GET", "POST"])
def lti_login(request: HttpRequest, registration_uuid: str) -> HttpResponse:
    """OIDC login initiation: first a page that checks the frame may keep cookies (else it
    offers a new tab), then off to the platform's authorization address."""
    registration = LtiRegistration.objects.filter(uuid=registration_uuid, is_active=True).first()
    platform = getattr(registration, "school_platform", None) if registration else None
    origins = platform.frame_origins() if platform else []
    params = request.POST if request.method == "POST" else request.GET
    try:
        if platform is None:
            raise SignInRefused(
                "unknown_platform",
                _("This learning platform is not registered with the tutor. Ask the school admin to register it."),
                detail=_("A login came to a registration address that is unknown or turned off."),
            )
        if not params.get("lti1p3_new_window"):
            keep = ("iss", "login_hint", "target_link_uri", "lti_message_hint", "lti_deployment_id", "client_id")
            query = {k: params[k] for k in keep if params.get(k)}
            query["lti1p3_new_window"] = "1"
            response = render(
                request,
                "identity/lti_cookie_check.html",
                {"continue_url": request.path + "?" + urlencode(query), "secure": request.is_secure()},
            )
            allow_in_frame(response, origins)
            return response
        return lti.login_redirect(request, registration_uuid)
    except SignInRefused as refusal:
        return _refused(
            request, refusal, school=platform.school if platform else None, platform=platform, frame_origins=origins
        )


@csrf_exempt  # the platform's signed id_token is the proof; see lti.launch_validate
@require_POST
def lti_launch(request: HttpRequest) -> HttpResponse:
    """A launch from a course: the teacher lands in the class's review queue, a student in
    the class's chat, inside the platform's frame. A deep-linking launch (a teacher adding
    the activity) shows the choice of class."""
    named = lti.registration_named_by(request)
    platform = getattr(named, "school_platform", None) if named else None
    origins = platform.frame_origins() if platform else []
    try:
        lti_launch = lti.launch_validate(request)
        platform = getattr(lti_launch.registration, "school_platform", None)
        if platform is None:
            raise SignInRefused(
                "unknown_platform",
                _("This learning platform is not registered with the tutor."),
                detail=_("A launch came from a registration that belongs to no school."),
            )
        origins = platform.frame_origins()
        deployment = lti_launch.deployment
        if not deployment.is_active:
            raise SignInRefused(
                "unknown_deployment",
                _("This activity's deployment is not turned on for the school. Ask the school admin."),
                detail=_(
                    "A launch came from deployment “%(deployment)s”, which is not turned on: turn it on below "
                    "if it is yours."
                )
                % {"deployment": deployment.deployment_id[:100]},
            )
        sync_data_from_launch(lti_launch)
        person, _renamed = services.platform_person(platform=platform, lti_user=lti_launch.user)
        role = lti.course_role(lti_launch.roles_claim)
        if lti_launch.is_deep_link_launch:
            if role != Membership.Role.TEACHER:
                raise _not_instructor()
            return _class_choice(request, platform, lti_launch, person, deep_link=True)
        if not lti_launch.is_resource_launch:
            raise SignInRefused(
                "unsupported", _("The tutor cannot open this kind of launch."), detail=_("Unsupported message type.")
            )
        link = CourseLink.objects.select_related("classroom").filter(context=lti_launch.context).first()
        if link is None:
            if role == Membership.Role.TEACHER:
                return _class_choice(request, platform, lti_launch, person, deep_link=False)
            raise SignInRefused(
                "no_class",
                _("Your teacher has not chosen the class for this activity yet."),
                detail=_("A student opened a course that is not linked to a class yet."),
            )
        if role is None:
            raise SignInRefused(
                "no_role",
                _("Your role in this course does not give you a place in the class."),
                detail=_("Someone who is neither teacher nor student of the course opened the tutor."),
            )
        outcome = services.course_member_place(link=link, person=person, role=role, actor=link.roster_actor or person)
        if outcome == "refused" or not person.is_active:
            raise SignInRefused(
                "account",
                _("Your account cannot open this class. Ask the school admin."),
                detail=_("A course member's account could not be placed in its class (see the line above)."),
            )
        if role == Membership.Role.TEACHER:
            _roster_sync_if_due(link, platform)
    except SignInRefused as refusal:
        return _refused(
            request, refusal, school=platform.school if platform else None, platform=platform, frame_origins=origins
        )
    return _enter(request, person, platform, link)


def _not_instructor() -> SignInRefused:
    return SignInRefused(
        "not_instructor",
        _("Only the course's teachers can choose the class."),
        detail=_("A course member who is not a teacher tried to choose the class."),
    )


def _enter(request: HttpRequest, person: User, platform: LtiPlatform, link: CourseLink) -> HttpResponse:
    login(request, person, backend=BACKEND)
    request.session[FRAME_SESSION_KEY] = {"origins": platform.frame_origins(), "platform": platform.id}
    role = Membership.objects.filter(classroom=link.classroom, user=person).values_list("role", flat=True).first()
    if role == Membership.Role.STUDENT:
        # The class's chat: the tutor's page, found by its URL name (classrooms imports nothing from tutor).
        return redirect(reverse("classroom", kwargs={"classroom_id": link.classroom_id}))
    return redirect(reverse("review_queue"))


def _roster_sync_if_due(link: CourseLink, platform: LtiPlatform) -> None:
    from datetime import timedelta

    from django.utils import timezone

    due = link.roster_synced_at is None or link.roster_synced_at < timezone.now() - timedelta(minutes=5)
    if due and link.context.memberships_url:
        try:
            services.course_roster_sync(link=link)
        except SignInRefused as refusal:
            services.problem_record(refusal=refusal, school=platform.school, platform=platform)


def _class_choice(
    request: HttpRequest, platform: LtiPlatform, lti_launch: object, person: User, *, deep_link: bool
) -> HttpResponse:
    """The page where a course's teacher picks one of their classes or makes a new one.
    Its form carries a signed token instead of relying on cookies, which the frame may lack."""
    context = lti_launch.context
    state = {"p": platform.id, "u": person.id, "c": context.id, "dl": None}
    if deep_link:
        claims = lti_launch.get_launch_data()
        state["dl"] = claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings") or {}
        state["d"] = claims.get("https://purl.imsglobal.org/spec/lti/claim/deployment_id", "")
    classes = classrooms_taught_by(person).filter(school=platform.school)
    response = render(
        request,
        "identity/lti_choose_class.html",
        {
            "token": signing.dumps(state, salt=CHOOSE_SALT, compress=True),
            "classes": classes,
            "course_title": (context.title or context.label or "")[:200],
            "platform": platform,
        },
    )
    allow_in_frame(response, platform.frame_origins())
    return response


@csrf_exempt  # the signed token from the launch is the proof (the frame may have no cookies)
@require_POST
def lti_class_choose(request: HttpRequest) -> HttpResponse:
    """A course teacher's choice of class: linked, its roster read, and then either the
    deep-linking answer to the platform or the class itself."""
    try:
        state = signing.loads(request.POST.get("token", ""), salt=CHOOSE_SALT, max_age=CHOOSE_VALID_SECONDS)
    except signing.BadSignature:
        return _refused(
            request,
            SignInRefused(
                "choice_expired",
                _("This page has expired. Add the activity again from the course."),
                detail=_("A class choice arrived with an expired or forged token."),
            ),
        )
    platform = LtiPlatform.objects.select_related("registration", "school").filter(pk=state["p"]).first()
    person = User.objects.filter(pk=state["u"], is_active=True).first()
    from lti_tool.models import LtiContext

    context = LtiContext.objects.filter(pk=state["c"], deployment__registration__school_platform=platform).first()
    origins = platform.frame_origins() if platform else []
    try:
        if platform is None or person is None or context is None:
            raise _not_instructor()
        lti_member = context.memberships.filter(user__auth_user=person, is_active=True).first()
        if lti_member is None or not (lti_member.is_instructor or lti_member.is_administrator):
            raise _not_instructor()
        form = forms.ClassChoiceForm(request.POST, classes=classrooms_taught_by(person).filter(school=platform.school))
        if not form.is_valid():
            raise SignInRefused("class_choice", _("Choose one of your classes, or name a new one."))
        link = services.course_link(
            platform=platform,
            context=context,
            teacher=person,
            classroom=form.cleaned_data.get("classroom"),
            new_name=form.cleaned_data.get("new_name") or context.title or _("New class"),
        )
        _roster_sync_if_due(link, platform)
    except SignInRefused as refusal:
        return _refused(
            request, refusal, school=platform.school if platform else None, platform=platform, frame_origins=origins
        )
    if state.get("dl") is None:
        return _enter(request, person, platform, link)
    settings_claim = state["dl"]
    jwt = lti.deep_link_response_jwt(
        platform,
        state.get("d", ""),
        settings_claim,
        title=link.classroom.name,
        url=request.build_absolute_uri(reverse("identity_lti_launch")),
        custom={"tutor_class": str(link.classroom_id)},
    )
    return_url = settings_claim.get("deep_link_return_url", "")
    response = render(request, "identity/lti_deep_link_return.html", {"return_url": return_url, "jwt": jwt})
    allow_in_frame(response, origins)
    allow_form_target(response, _origin(return_url))
    return response


# The school admin's sign-in page


@school_admin_required
@require_GET
def school_sign_in(request: HttpRequest) -> HttpResponse:
    school = request.user.school
    return render(
        request,
        "identity/school_sign_in.html",
        {
            "section": "sign_in",
            "sign_ins": selectors.sign_ins_of_school(school),
            "shared": selectors.shared_providers_not_used_by(school),
            "platforms": selectors.platforms_of_school(school),
            "invitations": [
                (i, request.build_absolute_uri(reverse("identity_lti_register", args=[i.token])))
                for i in selectors.open_invitations(school)
            ],
            "problems": selectors.problems_of_school(school),
            "provider_form": forms.OwnProviderForm(),
            "login_link": request.build_absolute_uri(reverse("login")) + f"?school={school.id}",
        },
    )


@school_admin_required
@require_POST
def school_sign_in_add(request: HttpRequest) -> HttpResponse:
    """Add the school's own service, or turn on one the installation shares."""
    school = request.user.school
    try:
        if request.POST.get("shared"):
            provider = selectors.shared_providers_not_used_by(school).filter(pk=request.POST["shared"]).first()
            if provider is None:
                raise classroom_services.ActionRefused(_("Choose a service from the list."))
            sign_in = services.shared_provider_enable(actor=request.user, school=school, provider=provider)
        else:
            form = forms.OwnProviderForm(request.POST)
            if not form.is_valid():
                for errors in form.errors.values():
                    for error in errors:
                        flash.error(request, error)
                return redirect("identity_school_sign_in")
            sign_in = services.school_provider_create(actor=request.user, school=school, **form.cleaned_data)
    except classroom_services.ActionRefused as refusal:
        flash.error(request, refusal.message)
        return redirect("identity_school_sign_in")
    flash.success(request, _("Added. Set its rules, then press “Test”."))
    return redirect("identity_school_sign_in_rules", sign_in_id=sign_in.id)


@school_admin_required
@require_http_methods(["GET", "POST"])
def school_sign_in_rules(request: HttpRequest, sign_in_id: int) -> HttpResponse:
    sign_in = selectors.sign_in_for_school_admin(request.user, sign_in_id)
    # Not bound to the instance: validating would set the new values on it before the
    # service compares them with the old ones.
    form = forms.SignInRulesForm(request.POST or None, initial=forms.rule_values_of(sign_in))
    if request.method == "POST" and form.is_valid():
        services.sign_in_update(actor=request.user, sign_in=sign_in, **form.rule_values())
        flash.success(request, _("Saved."))
        return redirect("identity_school_sign_in_rules", sign_in_id=sign_in.id)
    report = request.session.pop(f"identity_test_{sign_in.id}", None)
    return render(
        request,
        "identity/school_sign_in_rules.html",
        {"section": "sign_in", "sign_in": sign_in, "form": form, "report": report},
    )


@school_admin_required
@require_POST
def school_sign_in_test(request: HttpRequest, sign_in_id: int) -> HttpResponse:
    sign_in = selectors.sign_in_for_school_admin(request.user, sign_in_id)
    report = [vars(c) for c in checks.provider_checks(request, sign_in.provider)]
    request.session[f"identity_test_{sign_in.id}"] = report
    return redirect("identity_school_sign_in_rules", sign_in_id=sign_in.id)


@school_admin_required
@require_POST
def school_sign_in_remove(request: HttpRequest, sign_in_id: int) -> HttpResponse:
    sign_in = selectors.sign_in_for_school_admin(request.user, sign_in_id)
    services.sign_in_remove(actor=request.user, sign_in=sign_in)
    flash.success(request, _("Removed. Accounts that used it keep their classes."))
    return redirect("identity_school_sign_in")


@school_admin_required
@require_POST
def school_platform_invite(request: HttpRequest) -> HttpResponse:
    services.platform_invitation_create(actor=request.user, school=request.user.school)
    flash.success(request, _("Paste the new registration address into the platform within 24 hours."))
    return redirect("identity_school_sign_in")


@school_admin_required
@require_GET
def school_platform(request: HttpRequest, platform_id: int) -> HttpResponse:
    platform = selectors.platform_for_school_admin(request.user, platform_id)
    report = request.session.pop(f"identity_platform_test_{platform.id}", None)
    return render(
        request,
        "identity/school_platform.html",
        {
            "section": "sign_in",
            "platform": platform,
            "deployments": platform.registration.deployments.order_by("deployment_id"),
            "links": selectors.course_links_of_platform(platform),
            "report": report,
        },
    )


@school_admin_required
@require_POST
def school_platform_test(request: HttpRequest, platform_id: int) -> HttpResponse:
    platform = selectors.platform_for_school_admin(request.user, platform_id)
    request.session[f"identity_platform_test_{platform.id}"] = [
        vars(c) for c in checks.platform_checks(request, platform)
    ]
    return redirect("identity_school_platform", platform_id=platform.id)


@school_admin_required
@require_POST
def school_platform_deployment(request: HttpRequest, platform_id: int, deployment_id: int) -> HttpResponse:
    platform = selectors.platform_for_school_admin(request.user, platform_id)
    services.deployment_set_active(
        actor=request.user, platform=platform, deployment_id=deployment_id, active=request.POST.get("active") == "on"
    )
    return redirect("identity_school_platform", platform_id=platform.id)


@school_admin_required
@require_POST
def school_platform_remove(request: HttpRequest, platform_id: int) -> HttpResponse:
    platform = selectors.platform_for_school_admin(request.user, platform_id)
    services.platform_remove(actor=request.user, platform=platform)
    flash.success(request, _("The platform was removed; its launches are refused from now on."))
    return redirect("identity_school_sign_in")


@school_admin_required
@require_POST
def school_course_sync(request: HttpRequest, link_id: int) -> HttpResponse:
    """Read a linked course's roster now."""
    link = selectors.course_link_for_school_admin(request.user, link_id)
    platform = link.context.deployment.registration.school_platform
    try:
        counts = services.course_roster_sync(link=link)
    except SignInRefused as refusal:
        services.problem_record(refusal=refusal, school=platform.school, platform=platform)
        flash.error(request, refusal.detail)
    else:
        flash.success(
            request,
            _("Roster read: %(added)d added, %(updated)d updated, %(removed)d removed.") % counts,
        )
    return redirect("identity_school_platform", platform_id=platform.id)
