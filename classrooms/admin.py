from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from classrooms.models import AuditEntry, Classroom, Membership, School, User


@admin.register(User)
class PersonAdmin(UserAdmin):
    fieldsets = (
        *UserAdmin.fieldsets,
        ("School", {"fields": ("school", "is_school_admin", "student_number", "language")}),
    )
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
    inlines = (MembershipInline,)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The operator reads the log and cannot change it (student_delete alone scrubs names)."""

    list_display = ("at", "school", "actor_name", "action", "target")
    list_filter = ("school", "action")
    search_fields = ("actor_name", "target")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False


admin.site.register(School)
