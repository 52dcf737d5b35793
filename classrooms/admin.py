from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from classrooms.models import Classroom, Membership, School, User


@admin.register(User)
class PersonAdmin(UserAdmin):
    fieldsets = UserAdmin.fieldsets + (("School", {"fields": ("school", "is_school_admin", "language")}),)
    list_display = ("username", "first_name", "last_name", "school", "is_school_admin", "is_active")
    list_filter = ("school", "is_school_admin", "is_active")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


@admin.register(Classroom)
class ClassroomAdmin(admin.ModelAdmin):
    list_display = ("name", "school", "archived")
    list_filter = ("school", "archived")
    inlines = [MembershipInline]


admin.site.register(School)
