from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from classrooms.identity import views as identity_views
from tutor import health, views
from tutor.safeguarding import views as safeguarding_views

handler500 = views.server_error

urlpatterns = [
    path("", views.home, name="home"),
    path("classes/", views.student_classes, name="student_classes"),
    path("classes/<int:classroom_id>/", views.classroom_page, name="classroom"),
    path("classes/<int:classroom_id>/conversations/new/", views.conversation_new, name="conversation_new"),
    path("conversations/<int:conversation_id>/", views.conversation_page, name="conversation"),
    path(
        "api/conversations/<int:conversation_id>/messages/", views.conversation_messages, name="conversation_messages"
    ),
    path("review/", views.review_queue, name="review_queue"),
    path("review/<int:reply_id>/approve/", views.review_approve, name="review_approve"),
    path("review/<int:reply_id>/reject/", views.review_reject, name="review_reject"),
    path("review/<int:reply_id>/regenerate/", views.review_regenerate, name="review_regenerate"),
    path("review/<int:reply_id>/claim/", views.review_claim, name="review_claim"),
    path("review/<int:reply_id>/split/", views.review_split, name="review_split"),
    path("review/<int:reply_id>/check/", views.review_check, name="review_check"),
    path("review/stats/", views.review_stats, name="review_stats"),
    path("safeguarding/alerts/", safeguarding_views.alert_list, name="safeguarding_alerts"),
    path("safeguarding/alerts/<int:alert_id>/", safeguarding_views.alert_page, name="safeguarding_alert"),
    path(
        "safeguarding/alerts/<int:alert_id>/acknowledge/",
        safeguarding_views.alert_acknowledge,
        name="safeguarding_alert_acknowledge",
    ),
    path("safeguarding/alerts/<int:alert_id>/mark/", safeguarding_views.alert_mark, name="safeguarding_alert_mark"),
    path("school/safeguarding/examples/", safeguarding_views.school_examples, name="school_safeguarding_examples"),
    path(
        "school/safeguarding/examples/<int:example_id>/delete/",
        safeguarding_views.school_example_delete,
        name="school_safeguarding_example_delete",
    ),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    # Signing out also ends the session at the school's sign-in service, where it has one.
    path("accounts/logout/", identity_views.sign_out, name="logout"),
    path("", include("classrooms.urls")),
    path("", include("classrooms.identity.urls")),
    path("operator/", admin.site.urls),
    # Answered by tutor.health.ProbeMiddleware before the rest of the chain; listed here
    # so that they can be reversed and are checked with every other route.
    # Browsers ask for /favicon.ico on pages without the <link rel="icon"> (JSON, files).
    path("favicon.ico", RedirectView.as_view(url=static("tutor/icon.svg"), permanent=True), name="favicon"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
]
