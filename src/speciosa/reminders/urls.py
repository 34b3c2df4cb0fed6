from django.urls import path

from . import views

urlpatterns = [
    path("me/reminders/", views.my_reminders, name="my_reminders"),
    path("me/reminders/push/", views.push_subscribe, name="push_subscribe"),
    path("me/reminders/devices/<int:device_id>/remove/", views.device_remove, name="push_device_remove"),
]
