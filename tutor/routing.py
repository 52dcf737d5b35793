from django.urls import path

from tutor import consumers

websocket_urlpatterns = [
    path("ws/chat/<int:conversation_id>/", consumers.ChatConsumer.as_asgi(), name="ws_chat"),
    path("ws/review/", consumers.ReviewConsumer.as_asgi(), name="ws_review"),
    path("ws/alerts/", consumers.AlertConsumer.as_asgi(), name="ws_alerts"),
]
