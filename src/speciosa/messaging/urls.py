from django.urls import path

from . import views

urlpatterns = [
    path("me/messages/", views.my_messages, name="my_messages"),
    path("me/messages/<int:thread_id>/", views.my_thread, name="my_thread"),
    path("messages/", views.clinician_inbox, name="clinician_inbox"),
    path("messages/<int:thread_id>/", views.clinician_thread, name="clinician_thread"),
    path("patients/<int:patient_id>/messages/new/", views.thread_new, name="thread_new"),
]
