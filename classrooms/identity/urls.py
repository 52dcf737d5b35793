from django.urls import path

from classrooms.identity import views

urlpatterns = [
    # Signing in with a school's OpenID Connect or CAS service
    path("accounts/sign-in/<int:sign_in_id>/", views.sign_in_start, name="identity_sign_in"),
    path("accounts/oidc/<slug:key>/callback/", views.oidc_callback, name="identity_oidc_callback"),
    path("accounts/cas/<slug:key>/", views.cas_callback, name="identity_cas_callback"),
    path("accounts/sign-in-methods/", views.sign_in_methods, name="identity_sign_in_methods"),
    # LTI 1.3: the tool's addresses
    path("lti/jwks/", views.lti_jwks, name="identity_lti_jwks"),
    path("lti/register/<str:token>/", views.lti_register, name="identity_lti_register"),
    path("lti/login/<uuid:registration_uuid>/", views.lti_login, name="identity_lti_login"),
    path("lti/launch/", views.lti_launch, name="identity_lti_launch"),
    path("lti/choose-class/", views.lti_class_choose, name="identity_lti_class_choose"),
    # School admins: their school's sign-in services and platforms
    path("school/sign-in/", views.school_sign_in, name="identity_school_sign_in"),
    path("school/sign-in/add/", views.school_sign_in_add, name="identity_school_sign_in_add"),
    path("school/sign-in/<int:sign_in_id>/", views.school_sign_in_rules, name="identity_school_sign_in_rules"),
    path("school/sign-in/<int:sign_in_id>/test/", views.school_sign_in_test, name="identity_school_sign_in_test"),
    path("school/sign-in/<int:sign_in_id>/remove/", views.school_sign_in_remove, name="identity_school_sign_in_remove"),
    path("school/platforms/invite/", views.school_platform_invite, name="identity_school_platform_invite"),
    path("school/platforms/<int:platform_id>/", views.school_platform, name="identity_school_platform"),
    path("school/platforms/<int:platform_id>/test/", views.school_platform_test, name="identity_school_platform_test"),
    path(
        "school/platforms/<int:platform_id>/deployments/<int:deployment_id>/",
        views.school_platform_deployment,
        name="identity_school_platform_deployment",
    ),
    path(
        "school/platforms/<int:platform_id>/remove/",
        views.school_platform_remove,
        name="identity_school_platform_remove",
    ),
    path("school/courses/<int:link_id>/sync/", views.school_course_sync, name="identity_school_course_sync"),
]
