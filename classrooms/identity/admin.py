"""The operator's admin (/operator/): the installation's shared sign-in services (ProConnect,
an académie's provider), which any school may then turn on for itself."""

from django.contrib import admin

from classrooms.identity.models import IdentityProvider, SchoolSignIn


@admin.register(IdentityProvider)
class IdentityProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "protocol", "school", "issuer", "server_url")
    list_filter = ("protocol",)
    readonly_fields = ("secret_variable",)
    fields = ("name", "key", "protocol", "school", "issuer", "client_id", "scopes", "server_url", "secret_variable")


@admin.register(SchoolSignIn)
class SchoolSignInAdmin(admin.ModelAdmin):
    list_display = ("provider", "school", "enabled", "create_accounts")
    list_filter = ("enabled",)
