"""``/oauth/``: the SMART on FHIR authorization server (django-oauth-toolkit; see
:mod:`speciosa.interop.smart`).

Only the endpoints SMART needs are mounted: authorize (Speciosa's page, with the launch
context), token, revoke, introspect and OpenID Connect discovery, keys and userinfo. Not
django-oauth-toolkit's application-management pages (clients are registered by an operator
with ``speciosa oauth``), nor its device flow or dynamic registration.
"""

from django.urls import path, re_path
from oauth2_provider import views as oviews

from . import smart

app_name = "oauth2_provider"

urlpatterns = [
    path("authorize/", smart.SmartAuthorizationView.as_view(), name="authorize"),
    path("token/", oviews.TokenView.as_view(), name="token"),
    path("revoke_token/", oviews.RevokeTokenView.as_view(), name="revoke-token"),
    path("introspect/", oviews.IntrospectTokenView.as_view(), name="introspect"),
    re_path(r"^\.well-known/openid-configuration/?$", oviews.ConnectDiscoveryInfoView.as_view(),
            name="oidc-connect-discovery-info"),
    path(".well-known/jwks.json", oviews.JwksInfoView.as_view(), name="jwks-info"),
    path("userinfo/", oviews.UserInfoView.as_view(), name="user-info"),
]
