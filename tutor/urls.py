from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from classrooms.identity import views as identity_views
from tutor import health, views
from tutor.material import views as material_views
from tutor.safeguarding import views as safeguarding_views
from tutor.training import views as training_views

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
    path("review/classes/<int:classroom_id>/monitor/", views.class_monitor, name="class_monitor"),
    path("review/classes/<int:classroom_id>/report/", views.class_report, name="class_report"),
    path("review/classes/<int:classroom_id>/topics/", views.class_topics, name="class_topics"),
    path("review/classes/<int:classroom_id>/report.csv", views.class_report_csv, name="class_report_csv"),
    path(
        "review/classes/<int:classroom_id>/conversations/<int:conversation_id>/",
        views.class_conversation,
        name="class_conversation",
    ),
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
    path("teach/classes/<int:classroom_id>/material/", material_views.material_page, name="teach_material"),
    path(
        "teach/classes/<int:classroom_id>/material/status/",
        material_views.material_status,
        name="teach_material_status",
    ),
    path(
        "teach/classes/<int:classroom_id>/material/<int:document_id>/rename/",
        material_views.material_rename,
        name="teach_material_rename",
    ),
    path(
        "teach/classes/<int:classroom_id>/material/<int:document_id>/replace/",
        material_views.material_replace,
        name="teach_material_replace",
    ),
    path(
        "teach/classes/<int:classroom_id>/material/<int:document_id>/delete/",
        material_views.material_delete,
        name="teach_material_delete",
    ),
    path("school/training/", training_views.school_training, name="school_training"),
    path("school/training/export/", training_views.school_training_export, name="school_training_export"),
    path("school/training/models/", training_views.school_training_models, name="school_training_models"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    # Signing out also ends the session at the school's sign-in service, where it has one.
    path("accounts/logout/", identity_views.sign_out, name="logout"),
    path("", include("classrooms.urls")),
    path("", include("classrooms.identity.urls")),
    path("operator/", admin.site.urls),
    # Answered by tutor.health.ProbeMiddleware before the rest of the chain; listed here
    # so that they can be reversed and are checked with every other route.
    # Browsers ask for /favicon.ico on pages without the <link rel="icon"> (JSON, files).
    path("favicon.ico", views.favicon, name="favicon"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
]
