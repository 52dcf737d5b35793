"""Links to the school's pages in the site's header, for the people they are for."""

from django import template

from classrooms import selectors

register = template.Library()


@register.inclusion_tag("classrooms/nav_links.html", takes_context=True)
def classrooms_nav(context: template.Context) -> dict:
    user = context.get("user")
    signed_in = bool(user and user.is_authenticated)
    teaches = signed_in and user.is_active and selectors.classrooms_taught_by(user).exists()
    request = context.get("request")
    current = getattr(getattr(request, "resolver_match", None), "url_name", "")
    return {
        "signed_in": signed_in,
        "reviews": signed_in and user.is_active and selectors.classrooms_reviewed_by(user).exists(),
        "current": current,
        "is_school_admin": signed_in and selectors.is_school_admin(user),
        "teaches": teaches,
        "may_join": signed_in
        and not teaches
        and not user.is_school_admin
        and not selectors.is_safeguarding_contact(user, user.school_id),
    }
