from django.urls import path

from classrooms import views

urlpatterns = [
    path("language/", views.language_choose, name="language_choose"),
    # School admins: their own school only.
    path("school/", views.school_home, name="school_home"),
    path("school/classes/new/", views.school_class_create, name="school_class_create"),
    path("school/classes/<int:classroom_id>/", views.school_class, name="school_class"),
    path("school/classes/<int:classroom_id>/rename/", views.school_class_rename, name="school_class_rename"),
    path("school/classes/<int:classroom_id>/archive/", views.school_class_archive, name="school_class_archive"),
    path("school/classes/<int:classroom_id>/restore/", views.school_class_restore, name="school_class_restore"),
    path("school/classes/<int:classroom_id>/staff/", views.school_class_staff_assign, name="school_class_staff_assign"),
    path(
        "school/classes/<int:classroom_id>/students/",
        views.school_class_student_enrol,
        name="school_class_student_enrol",
    ),
    path(
        "school/classes/<int:classroom_id>/people/<int:user_id>/remove/",
        views.school_class_member_remove,
        name="school_class_member_remove",
    ),
    path(
        "school/classes/<int:classroom_id>/people/<int:user_id>/move/",
        views.school_class_student_move,
        name="school_class_student_move",
    ),
    path("school/classes/<int:classroom_id>/accounts/", views.school_class_accounts, name="school_class_accounts"),
    path("school/classes/<int:classroom_id>/passwords/", views.school_class_passwords, name="school_class_passwords"),
    path("school/people/", views.school_people, name="school_people"),
    path("school/people/new/", views.school_staff_new, name="school_staff_new"),
    path("school/people/<int:user_id>/", views.school_person, name="school_person"),
    path("school/people/<int:user_id>/deactivate/", views.school_person_deactivate, name="school_person_deactivate"),
    path("school/people/<int:user_id>/reactivate/", views.school_person_reactivate, name="school_person_reactivate"),
    path("school/people/<int:user_id>/password/", views.school_person_password, name="school_person_password"),
    path("school/people/<int:user_id>/export/", views.school_person_export, name="school_person_export"),
    path("school/people/<int:user_id>/delete/", views.school_person_delete, name="school_person_delete"),
    path("school/roster/", views.school_roster, name="school_roster"),
    path("school/roster/confirm/", views.school_roster_confirm, name="school_roster_confirm"),
    path("school/roster/export/", views.school_roster_export, name="school_roster_export"),
    path("school/audit/", views.school_audit, name="school_audit"),
    path("school/settings/", views.school_settings, name="school_settings"),
    path("school/safeguarding/", views.school_safeguarding, name="school_safeguarding"),
    path("school/safeguarding/staff/", views.school_safeguarding_contact_add, name="school_safeguarding_contact_add"),
    path(
        "school/safeguarding/staff/<int:contact_id>/remove/",
        views.school_safeguarding_contact_remove,
        name="school_safeguarding_contact_remove",
    ),
    path(
        "school/safeguarding/staff/<int:contact_id>/move/",
        views.school_safeguarding_contact_move,
        name="school_safeguarding_contact_move",
    ),
    path("school/safeguarding/message/", views.school_safeguarding_message, name="school_safeguarding_message"),
    path("school/safeguarding/delay/", views.school_safeguarding_delay, name="school_safeguarding_delay"),
    path("school/safeguarding/chat/", views.school_safeguarding_chat, name="school_safeguarding_chat"),
    # Teachers: their classes' tutor settings and join codes.
    path("teach/", views.teach_home, name="teach_home"),
    path("teach/classes/<int:classroom_id>/", views.teach_class, name="teach_class"),
    path("teach/classes/<int:classroom_id>/limits/", views.teach_class_limits, name="teach_class_limits"),
    path("teach/classes/<int:classroom_id>/pause/", views.teach_class_pause, name="teach_class_pause"),
    path("teach/classes/<int:classroom_id>/passwords/", views.teach_class_passwords, name="teach_class_passwords"),
    path(
        "teach/classes/<int:classroom_id>/join-code/rotate/",
        views.teach_join_code_rotate,
        name="teach_join_code_rotate",
    ),
    path(
        "teach/classes/<int:classroom_id>/join-code/switch/",
        views.teach_join_code_switch,
        name="teach_join_code_switch",
    ),
    # Students.
    path("join/", views.join_class, name="join_class"),
    path("signup/", views.sign_up, name="sign_up"),
]
