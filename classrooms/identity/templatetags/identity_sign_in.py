from django import template

from classrooms.identity import selectors

register = template.Library()


@register.inclusion_tag("identity/sign_in_buttons.html", takes_context=True)
def sign_in_buttons(context: template.Context) -> dict:
    """The login page's "Sign in with …" buttons: those of the school the page is for."""
    request = context["request"]
    school = selectors.school_for_login_page(request.GET.get("school") or request.COOKIES.get(selectors.SCHOOL_COOKIE))
    return {"school": school, "sign_ins": selectors.sign_in_buttons(school), "next": context.get("next", "")}
