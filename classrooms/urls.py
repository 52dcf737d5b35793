from django.urls import path

from classrooms import views

urlpatterns = [
    path("language/", views.language_choose, name="language_choose"),
    path("school/", views.school_home, name="school_home"),
]
